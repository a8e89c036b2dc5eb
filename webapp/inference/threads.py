"""Each process's CPU share (threads for torch and ONNX Runtime, priority) from config.yaml's `inference` section."""

from __future__ import annotations

import logging
import os
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
