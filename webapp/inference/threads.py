"""Each process's CPU threads for torch and ONNX Runtime, from config.yaml's `inference` section."""

from __future__ import annotations

import logging
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
