"""Predictions: made by the serving champion, stored with the version that made them."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from learning.data import load_grayscale
from webapp.extensions import db
from webapp.inference import explanations
from webapp.inference.serving import Served
from webapp.models import Image, Prediction
from webapp.services import services


def prediction_fields(version: int, probabilities: np.ndarray, names: list[str]) -> dict:
    """The columns of a Prediction, from a model version's class probabilities over its own
    classes (`net.spec.class_names`: a model trained before a class was added does not know it)."""
    best = int(np.argmax(probabilities))
    return {
        "model_version": version,
        "probabilities": {name: round(float(p), 6) for name, p in zip(names, probabilities)},
        "predicted_class": names[best],
        "confidence": float(probabilities[best]),
    }


def record(
    image: Image, version: int, probabilities: np.ndarray, names: list[str], latency_ms: float | None = None
) -> Prediction:
    prediction = Prediction(image=image, latency_ms=latency_ms, **prediction_fields(version, probabilities, names))
    db.session.add(prediction)
    return prediction


@dataclass(frozen=True)
class Explained:
    """A prediction worked out but not stored: computed outside any transaction."""

    version: int
    names: list[str]
    probabilities: np.ndarray
    location: str
    overlay: bytes  # the heat-map PNG, at the stored image's (bounded) size
    latency_ms: float


def explain_pixels(served: Served, pixels: np.ndarray, started: float | None = None) -> Explained:
    """Grad-CAM's forward pass gives the probabilities too: the model runs once per upload."""
    started = time.perf_counter() if started is None else started
    explanation = explanations.explain_image(served.net, pixels)
    overlay = explanations.overlay_png(pixels, explanation)
    return Explained(
        served.version,
        list(served.net.spec.class_names),
        explanation.probabilities,
        explanation.location.description,
        overlay,
        (time.perf_counter() - started) * 1000,
    )


def add_explained(image: Image, sha256: str, explained: Explained) -> Prediction:
    """Write the overlay file and add the prediction row; the caller commits (and on failure
    removes the file with `discard_overlay`)."""
    target = explanations.write_overlay(sha256, explained.version, explained.overlay)
    prediction = record(image, explained.version, explained.probabilities, explained.names, explained.latency_ms)
    prediction.heatmap_path = str(target)
    prediction.location = explained.location
    return prediction


def discard_overlay(sha256: str, version: int) -> None:
    explanations.overlay_file(sha256, version).unlink(missing_ok=True)


def predict(image: Image) -> Prediction:
    """Predict with the champion now, or reuse this version's earlier prediction. The heavy work
    comes before the row is added, so no write is pending while Grad-CAM runs."""
    started = time.perf_counter()
    served = services().server.current()
    existing = latest(image.id, served.version)
    if existing is not None:
        return existing
    pixels = load_grayscale(services().store.path(image.path))
    prediction = add_explained(image, image.sha256, explain_pixels(served, pixels, started))
    db.session.flush()
    return prediction


def latest(image_id: int, version: int | None = None) -> Prediction | None:
    query = db.select(Prediction).filter_by(image_id=image_id)
    if version is not None:
        query = query.filter_by(model_version=version)
    return db.session.execute(query.order_by(Prediction.id.desc()).limit(1)).scalar_one_or_none()


def to_dict(prediction: Prediction) -> dict:
    ranked = sorted(prediction.probabilities.items(), key=lambda kv: kv[1], reverse=True)
    return {
        "id": prediction.id,
        "image_id": prediction.image_id,
        "model_version": prediction.model_version,
        "predicted_class": prediction.predicted_class,
        "confidence": round(prediction.confidence, 4),
        "probabilities": dict(ranked),
        "location": prediction.location,
        "created_at": prediction.created_at.isoformat() + "Z",
    }
