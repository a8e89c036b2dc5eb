"""Grad-CAM overlays of predictions: made off the request path, once per image and version, cached on disk."""

from __future__ import annotations

import copy
import fcntl
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import contextmanager
from pathlib import Path

from flask import Flask, current_app
from PIL import Image as PILImage
from PIL.PngImagePlugin import PngImageFile

from learning.decoding import load_grayscale
from learning.model import XrayNet
from webapp.errors import Problem
from webapp.extensions import db
from webapp.files import write_atomic
from webapp.models import Prediction
from webapp.services import services

log = logging.getLogger(__name__)

# The viewer lays the overlay over the X-ray and the browser scales it with the film (object-fit:
# contain, smooth resampling). Grad-CAM's map has image_size / 32 cells a side (7 at 224 px), so
# pixels past a few hundred carry nothing; 512 keeps the colour edges smooth at a full-screen fit.
OVERLAY_MAX_SIDE = 512
WAIT_SECONDS = 60.0  # a heat-map request waits this long for a computation in progress, then 503
POLL_SECONDS = 0.02  # how often a waiting request tries the image's lock again
LOCATION_KEY = "medal:location"  # the lung zone, kept in the overlay file itself
BACKGROUND_NICE = 5  # the background thread yields the CPU to requests (Linux: per thread)


class HeatMapPending(Problem):
    """Another process is still computing this heat map after WAIT_SECONDS."""

    status = 503


def overlay_file(sha256: str, version: int) -> Path:
    """Named by the image's content and the model version: every process finds the same file."""
    return _folder() / f"{sha256}-v{version}.png"


def _folder() -> Path:
    return Path(current_app.config["MEDAL_HOME"]) / "heatmaps"


def overlay_shape(height: int, width: int) -> tuple[int, int]:
    """The overlay's (height, width): the stored image's aspect ratio, at most OVERLAY_MAX_SIDE."""
    scale = min(1.0, OVERLAY_MAX_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def ready(prediction: Prediction) -> bool:
    return bool(prediction.heatmap_path) and Path(prediction.heatmap_path).exists()


def status(prediction: Prediction) -> str:
    """For an answer: "ready", or "pending" while the background computation (or the route) makes it."""
    return "ready" if ready(prediction) else "pending"


def heatmap_path(prediction: Prediction, wait_seconds: float = WAIT_SECONDS) -> Path | None:
    """The prediction's overlay: the cached file, or computed now. A computation already under way
    (the upload's background task, another web process) is waited for, not repeated; a crash that
    left a prediction without its overlay is repaired here. None when the version cannot be loaded."""
    if ready(prediction):
        return Path(prediction.heatmap_path)
    image = prediction.image
    prediction_id, version, sha = prediction.id, prediction.model_version, image.sha256
    stored = services().store.path(image.path)
    db.session.commit()  # no transaction stays open while this request waits or computes
    target = overlay_file(sha, version)
    with image_lock(sha, version, wait_seconds):
        if not target.exists():
            net = services().server.net_for(version)
            if net is None:
                return None
            _compute(net, stored, target)
        location = _location(target)
    # the row only caches what the file says: a crash between the two is mended by the next request
    db.session.execute(
        db.update(Prediction).where(Prediction.id == prediction_id).values(heatmap_path=str(target), location=location)
    )
    db.session.commit()
    return target


def _compute(net: XrayNet, stored: Path, target: Path) -> None:
    """Grad-CAM and the overlay PNG, written atomically: the file is whole or absent."""
    from learning.explain import explain, overlay_png  # Grad-CAM is loaded on first use, not at start-up

    pixels = load_grayscale(stored)
    with _own_copy(net) as mine:
        explanation = explain(mine, pixels, mine.spec.image_size, overlay_shape(*pixels.shape))
    png = overlay_png(pixels, explanation.heatmap, {LOCATION_KEY: explanation.location.description})
    write_atomic(target, png)


def location_for(prediction: Prediction, class_name: str) -> str | None:
    """Where the evidence for another class of the prediction lies, in words: a second Grad-CAM pass
    targeted at that class (about 130 ms at 224 px on a CPU), not cached. None when the version
    cannot be loaded or does not have the class."""
    from learning.explain import explain

    net = services().server.net_for(prediction.model_version)
    if net is None or class_name not in net.spec.class_names:
        return None
    pixels = load_grayscale(services().store.path(prediction.image.path))
    with _own_copy(net) as mine:
        index = mine.spec.class_names.index(class_name)
        explanation = explain(mine, pixels, mine.spec.image_size, overlay_shape(*pixels.shape), target=index)
    return explanation.location.description


def _location(target: Path) -> str | None:
    with PILImage.open(target) as overlay:  # a PNG we wrote, the location in a text chunk
        return overlay.text.get(LOCATION_KEY) if isinstance(overlay, PngImageFile) else None


@contextmanager
def image_lock(sha256: str, version: int, wait_seconds: float) -> Iterator[None]:
    """One computation per image and version across threads and processes (flock: an open file per
    holder, released by the kernel if the holder dies). Waiters poll until it is free."""
    locks = _folder() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    with open(locks / f"{sha256}-v{version}.lock", "a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise HeatMapPending("The heat map is still being computed; try again in a moment.") from None
                time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# Grad-CAM hooks the network's layers, so two explanations on one network at once would mix their
# activations (and the served network also answers predictions under the torch engine). Each
# computation takes its own copy; idle copies are kept per served network for the next one.
_copies: weakref.WeakKeyDictionary[XrayNet, list[XrayNet]] = weakref.WeakKeyDictionary()
_copies_lock = threading.Lock()


@contextmanager
def _own_copy(net: XrayNet) -> Iterator[XrayNet]:
    with _copies_lock:
        idle = _copies.setdefault(net, [])
        mine = idle.pop() if idle else None
    if mine is None:
        mine = copy.deepcopy(net).eval()
    try:
        yield mine
    finally:
        with _copies_lock:
            _copies.setdefault(net, []).append(mine)


# --- the background computation the upload starts -------------------------------------------------

_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None
_pending: set[Future] = set()
_pool_lock = threading.Lock()


def start(prediction_id: int) -> None:
    """Compute the overlay of a committed prediction in this process's background thread. If the
    process dies first, the heat-map route computes it when it is asked for."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # Flask types the proxy as the app
    future = _executor().submit(_in_background, app, prediction_id)
    with _pool_lock:
        _pending.add(future)
    future.add_done_callback(_forget)


def drain(timeout: float | None = None) -> bool:
    """Wait for this process's background computations (tests, benchmarks, shutdown); True if none is left."""
    with _pool_lock:
        pending = set(_pending)
    return not wait_for(pending, timeout=timeout).not_done if pending else True


def _forget(future: Future) -> None:
    with _pool_lock:
        _pending.discard(future)


def _executor() -> ThreadPoolExecutor:
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():  # a forked web process starts its own thread
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heatmap", initializer=_lower_priority)
            _pool_pid = os.getpid()
            _pending.clear()
        return _pool


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + BACKGROUND_NICE)
    except OSError:  # not Linux, or not allowed: the thread runs at the process's priority
        pass


def _in_background(app: Flask, prediction_id: int) -> None:
    with app.app_context():
        try:
            prediction = db.session.get(Prediction, prediction_id)
            if prediction is not None:
                heatmap_path(prediction)
        except Exception:  # the route computes it on request instead
            log.exception("the heat map of prediction %s could not be computed in the background", prediction_id)
            db.session.rollback()
