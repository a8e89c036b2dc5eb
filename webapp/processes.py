"""Whether a process recorded in the database still runs on this host, and the crash-test pause points."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import psutil

# Test hook, not a setting: when PAUSE_ENV names a pause point, the process reaching it writes the
# file PAUSE_FILE_ENV names and sleeps, so a test can kill -9 it at exactly that moment. The names
# avoid the MEDAL_ prefix on purpose: those variables are settings.
PAUSE_ENV = "MEDALTEST_PAUSE_AT"
PAUSE_FILE_ENV = "MEDALTEST_PAUSE_FILE"
START_TOLERANCE_S = 0.05  # psutil computes a process's start time the same way every time


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


def hostname() -> str:
    return socket.gethostname()


def started_at(pid: int | None = None) -> float:
    """The start time of a process (this one by default): with the pid, it names one process for good."""
    return psutil.Process(pid if pid is not None else os.getpid()).create_time()


def same_process_alive(pid: int | None, started: float | None) -> bool:
    """Whether the process that recorded (pid, start time) on this host still runs. A pid now held by
    another process (pids get reused) is not it. Without a recorded start time, falls back to `alive`."""
    if started is None:
        return alive(pid)
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        return abs(psutil.Process(pid).create_time() - started) < START_TOLERANCE_S
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # e.g. access denied: it exists, leases decide
        return True


def pause_point(name: str) -> None:
    """Test hook: sleep here (for a test to kill -9 this process) when the environment asks for `name`."""
    if os.environ.get(PAUSE_ENV) != name:
        return
    marker = os.environ.get(PAUSE_FILE_ENV)
    if marker:
        Path(marker).write_text(str(os.getpid()))
    time.sleep(600)
