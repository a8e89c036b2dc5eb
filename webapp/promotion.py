"""Gate runs, approval, rejection, promotion and rollback (the registry issue fills this in)."""


def on_candidate(version: int) -> None:
    """A new candidate is registered: the gate evaluates it against the champion."""
