"""Each process's CPU share (threads for torch and ONNX Runtime, priority) from config.yaml's `inference` section,
and the turns the CPU-heavy jobs take on a MEDAL_HOME's cores."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from learning.engine import Threads, use_threads
from webapp.config import Settings

log = logging.getLogger(__name__)
Role = Literal["web", "worker"]


def apply(settings: Settings, role: Role) -> Threads:
    """Set this process's threads for its role: `web` for the web processes, `worker` for the worker
    and every other medal command. Sessions ONNX Runtime opens afterwards take the same counts."""
    wanted = getattr(settings.inference, role).threads
    found = use_threads(wanted)
    log.info("%s process: %d intra-op, %d inter-op threads", role, found.intra_op, found.inter_op)
    return found


def lower_priority(nice: int) -> int:
    """Lower this whole process's CPU priority to `nice` (never raise it: only root may), so the web
    processes get the CPU first whenever they want it. On Linux a priority belongs to each thread:
    every thread running now is set, and threads started later inherit it. Returns the value in force."""
    tasks = Path("/proc/self/task")
    ids = [int(task.name) for task in tasks.iterdir()] if tasks.exists() else [0]
    for task in ids:
        try:
            if os.getpriority(os.PRIO_PROCESS, task) < nice:
                os.setpriority(os.PRIO_PROCESS, task, nice)
        except ProcessLookupError:  # the thread ended meanwhile
            continue
    found = os.getpriority(os.PRIO_PROCESS, 0)
    log.info("CPU priority: nice %d (asked %d)", found, nice)
    return found


@contextmanager
def cpu_turn(home: str | Path) -> Iterator[None]:
    """One CPU-heavy job at a time on a MEDAL_HOME: the worker's (a run and the re-score after it, a
    drift pass, a PACS pull) and `medal train`, `score` and `drift measure` run by hand. Each takes
    every core it is given (`inference.worker`), and two at once oversubscribe them (a round beside
    a drift pass trained 1.8x slower than with one thread each, measured while torch's threads still
    spun; docs/benchmarks.md). An flock on
    MEDAL_HOME/cpu.lock: each holder opens the file itself, so it excludes threads and processes
    alike, and the kernel lets go of it when its holder dies. A holder that waits says so once."""
    with open(Path(home) / "cpu.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for the cores: another CPU-heavy job runs on %s", home)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
