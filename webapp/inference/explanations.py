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


def overlay_png(pixels, explanation) -> bytes:
    from learning.explain import overlay_png as render

    return render(pixels, explanation.heatmap)


def overlay_file(sha256: str, version: int) -> Path:
    """Named by the image's content and the model version, so it can be written before the
    prediction row exists (the row and the file are stored together or not at all)."""
    return Path(current_app.config["MEDAL_HOME"]) / "heatmaps" / f"{sha256}-v{version}.png"


def write_overlay(sha256: str, version: int, png: bytes) -> Path:
    target = overlay_file(sha256, version)
    write_atomic(target, png)
    return target


def heatmap_path(prediction: Prediction) -> Path | None:
    """The cached overlay, computed with the model version that made the prediction."""
    if prediction.heatmap_path and Path(prediction.heatmap_path).exists():
        return Path(prediction.heatmap_path)
    net = services().server.net_for(prediction.model_version)
    if net is None:
        return None
    image = prediction.image
    pixels = load_grayscale(services().store.path(image.path))
    explanation = explain_image(net, pixels)  # the heavy part, before any write
    target = write_overlay(image.sha256, prediction.model_version, overlay_png(pixels, explanation))
    prediction.heatmap_path = str(target)
    prediction.location = explanation.location.description
    db.session.commit()
    return target
