"""The gold set: marking images, blind doctor reads, adjudication, frozen snapshots."""
