"""Grad-CAM overlays for predictions: computed once, cached under MEDAL_HOME/heatmaps."""

from __future__ import annotations

import threading
from pathlib import Path

from flask import current_app

from learning.data import load_grayscale
from webapp.extensions import db
from webapp.files import write_atomic
from webapp.models import Prediction
from webapp.services import services

# Grad-CAM hooks the model's layers: two explanations at once on one model would mix.
_explaining = threading.Lock()


def explain_image(net, pixels):
    from learning.explain import (
        explain,  # Grad-CAM is loaded on first use, not at start-up
    )

    with _explaining:
        return explain(net, pixels, net.spec.image_size)


def _cache_file(prediction_id: int) -> Path:
    return Path(current_app.config["MEDAL_HOME"]) / "heatmaps" / f"{prediction_id}.png"


def store(prediction: Prediction, image, explanation) -> None:
    """Write the overlay beside the prediction; the caller commits."""
    from learning.explain import overlay_png

    target = _cache_file(prediction.id)
    write_atomic(target, overlay_png(image, explanation.heatmap))
    prediction.heatmap_path = str(target)
    prediction.location = explanation.location.description


def heatmap_path(prediction: Prediction) -> Path | None:
    """The cached overlay, computed with the model version that made the prediction."""
    if prediction.heatmap_path and Path(prediction.heatmap_path).exists():
        return Path(prediction.heatmap_path)
    net = services().server.net_for(prediction.model_version)
    if net is None:
        return None
    pixels = load_grayscale(services().store.path(prediction.image.path))
    store(prediction, pixels, explain_image(net, pixels))
    db.session.commit()
    return Path(prediction.heatmap_path)
