"""Where a browser may be sent after a form: local paths only."""

from __future__ import annotations


def safe_next(target: str | None, default: str) -> str:
    """`target` if it is a path on this site, else `default`: an open redirect would let a link
    send a doctor elsewhere after logging in or labeling."""
    target = target or ""
    if not target.startswith("/") or target.startswith("//"):
        return default
    return target
