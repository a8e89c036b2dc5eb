"""The label classes of this deployment: seeded from config.yaml, added and renamed at run time."""
