"""The champion model in memory, swapped atomically when the registry alias moves."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

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
    net: XrayNet


class ModelServer:
    """One per process. Requests take a reference to the current `Served` at their start, so a
    swap never changes the model under a request in flight."""

    def __init__(self, registry: Registry, poll_seconds: float):
        self.registry, self.poll_seconds = registry, poll_seconds
        self._served: Served | None = None
        self._checked_at = -float("inf")
        self._lock = threading.Lock()
        self._others: dict[int, XrayNet] = {}  # older versions, for heat maps of old predictions

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
                    net = self.registry.load(version)
                except Exception:
                    log.exception("champion version %s cannot be loaded", version)
                    if self._served is None:
                        raise NoChampion(f"The champion model (version {version}) cannot be loaded yet.") from None
                    return self._served  # keep serving the loaded model; the next request retries
                self._served = Served(version, net)  # one reference assignment: atomic swap
                log.info("serving model version %s", version)
            self._checked_at = time.monotonic()
            return self._served

    def net_for(self, version: int) -> XrayNet | None:
        """The network of any registered version: the champion from memory, others from disk."""
        served = self._served
        if served is not None and served.version == version:
            return served.net
        with self._lock:
            if version not in self._others:
                if len(self._others) >= 2:
                    self._others.pop(next(iter(self._others)))
                try:
                    self._others[version] = self.registry.load(version)
                except Exception:
                    log.warning("model version %s cannot be loaded", version)
                    return None
            return self._others[version]
