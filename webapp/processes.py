"""Whether a process recorded in the database still runs on this host."""

from __future__ import annotations

import os


def alive(pid: object) -> bool:
    """True unless `pid` certainly names no running process. An unknown pid, or one we may not
    signal (another user's process), counts as alive: leases and timeouts decide then."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: the process exists but belongs to someone else
        return True
    return True
