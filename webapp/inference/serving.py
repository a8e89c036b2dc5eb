"""The champion model in memory, swapped atomically when the registry alias moves."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from learning.engine import Engine, EngineKind, load_engine
from learning.model import XrayNet
from registry.client import Registry
from registry.uris import CHAMPION
from webapp.errors import Problem

log = logging.getLogger(__name__)


class NoChampion(Problem):
    """No model has been promoted yet: the service is not ready to predict."""

    status = 503


@dataclass(frozen=True)
class Served:
    version: int
    net: XrayNet  # torch: Grad-CAM
    engine: Engine  # predictions and scoring: ONNX Runtime where the version has an export, else `net`


class ModelServer:
    """One per process. Requests take a reference to the current `Served` at their start, so a
    swap never changes the model under a request in flight."""

    def __init__(self, registry: Registry, poll_seconds: float, engine: EngineKind = "onnxruntime"):
        self.registry, self.poll_seconds, self.engine = registry, poll_seconds, engine
        self._served: Served | None = None
        self._checked_at = -float("inf")
        self._lock = threading.Lock()
        self._others: dict[int, Served] = {}  # other versions: heat maps of old predictions, scoring, the gate

    def _load(self, version: int) -> Served:
        net = self.registry.load(version)
        engine = load_engine(self.registry.model_dir(version), net, prefer=self.engine)
        log.info("model version %s runs on %s", version, engine.kind)
        return Served(version, net, engine)

    def _due(self) -> bool:
        return time.monotonic() - self._checked_at >= self.poll_seconds

    def current(self) -> Served:
        if self._due():
            self.refresh(only_if_due=True)
        served = self._served
        if served is None:
            raise NoChampion("No model is serving yet: train and promote one first (`medal train`).")
        return served

    def refresh(self, only_if_due: bool = False) -> Served | None:
        """Check the champion alias; load and swap when it moved.

        The check counts as done only once the model is loaded: requests arriving meanwhile wait
        on the lock for that load (instead of seeing "no model" while v1 is champion), and a failed
        load leaves the check due, so the next request tries again."""
        with self._lock:
            if only_if_due and not self._due():
                return self._served  # another request checked while this one waited for the lock
            version = self.registry.version_for(CHAMPION)
            if version is None:
                self._served = None
            elif self._served is None or self._served.version != version:
                try:
                    served = self._load(version)
                except Exception:
                    log.exception("champion version %s cannot be loaded", version)
                    if self._served is None:
                        raise NoChampion(f"The champion model (version {version}) cannot be loaded yet.") from None
                    return self._served  # keep serving the loaded model; the next request retries
                self._served = served  # one reference assignment: atomic swap
                log.info("serving model version %s", version)
            self._checked_at = time.monotonic()
            return self._served

    def net_for(self, version: int) -> XrayNet | None:
        """The torch network of any registered version (Grad-CAM): the champion from memory, others from disk."""
        served = self.served_for(version)
        return served.net if served is not None else None

    def engine_for(self, version: int) -> Engine | None:
        """The inference engine of any registered version (predictions, scoring)."""
        served = self.served_for(version)
        return served.engine if served is not None else None

    def served_for(self, version: int) -> Served | None:
        served = self._served
        if served is not None and served.version == version:
            return served
        with self._lock:
            if version not in self._others:
                if len(self._others) >= 2:
                    self._others.pop(next(iter(self._others)))
                try:
                    self._others[version] = self._load(version)
                except Exception:
                    log.warning("model version %s cannot be loaded", version)
                    return None
            return self._others[version]
