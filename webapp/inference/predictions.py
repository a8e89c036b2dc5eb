"""Predictions: made by the serving champion, stored with the version that made them."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from learning.data import to_tensor
from learning.decoding import load_grayscale
from webapp.extensions import db
from webapp.inference import doubt
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
class Predicted:
    """A prediction worked out but not stored: computed outside any transaction."""

    version: int
    names: list[str]
    probabilities: np.ndarray
    latency_ms: float


def predict_pixels(served: Served, pixels: np.ndarray, started: float | None = None) -> Predicted:
    """One batch-1 forward pass of the serving engine (ONNX Runtime where the version has an
    export). Grad-CAM is not part of it: the overlay is made afterwards (`explanations`)."""
    started = time.perf_counter() if started is None else started
    probabilities, _ = served.engine.run(to_tensor(pixels, served.engine.spec.image_size).numpy()[None])
    return Predicted(
        served.version,
        list(served.engine.spec.class_names),
        probabilities[0],
        (time.perf_counter() - started) * 1000,
    )


def add_predicted(image: Image, predicted: Predicted) -> Prediction:
    """Add the prediction row; the caller commits, then starts its heat map (`explanations.start`)."""
    return record(image, predicted.version, predicted.probabilities, predicted.names, predicted.latency_ms)


def predict(image: Image) -> Prediction:
    """Predict with the champion now, or reuse this version's earlier prediction. The forward pass
    comes before the row is added, so no write is pending while the model runs. The caller commits
    and starts the heat map."""
    started = time.perf_counter()
    served = services().server.current()
    existing = latest(image.id, served.version)
    if existing is not None:
        return existing
    pixels = load_grayscale(services().store.path(image.path))
    prediction = add_predicted(image, predict_pixels(served, pixels, started))
    db.session.flush()
    return prediction


def latest(image_id: int, version: int | None = None) -> Prediction | None:
    query = db.select(Prediction).filter_by(image_id=image_id)
    if version is not None:
        query = query.filter_by(model_version=version)
    return db.session.execute(query.order_by(Prediction.id.desc()).limit(1)).scalar_one_or_none()


def to_dict(prediction: Prediction) -> dict:
    ranked = sorted(prediction.probabilities.items(), key=lambda kv: kv[1], reverse=True)
    between = doubt.configured(prediction.probabilities).between
    return {
        "id": prediction.id,
        "image_id": prediction.image_id,
        "model_version": prediction.model_version,
        "predicted_class": prediction.predicted_class,
        "confidence": round(prediction.confidence, 4),
        "probabilities": dict(ranked),
        # the two classes the model hesitates between (config.yaml `doubt`), identifiers; None for a clear call
        "uncertain_between": list(between) if between else None,
        "location": prediction.location,  # from the heat map: None until it is ready
        "created_at": prediction.created_at.isoformat() + "Z",
    }
