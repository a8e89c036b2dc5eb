"""Radiographs, their thumbnails and heat-map overlays as files, for any logged-in user's pages."""

from __future__ import annotations

import io
from pathlib import Path

from flask import Blueprint, abort, current_app, send_file
from flask_login import current_user
from PIL import Image as PILImage

from webapp.extensions import db
from webapp.files import write_atomic
from webapp.gold.goldset import visible_prediction
from webapp.inference import doubt, explanations
from webapp.models import Image, Label
from webapp.services import services

bp = Blueprint("inference", __name__)

THUMBNAIL_PX = 192  # longest side; lists show them at 96-128 CSS px, sharp on 1.5-2x screens
RECENT_LABELS = 12


@bp.get("/images/<int:image_id>.png")
def image_file(image_id: int):
    image = db.get_or_404(Image, image_id)
    return send_file(services().store.path(image.path), mimetype="image/png", max_age=3600)


@bp.get("/images/<int:image_id>/thumbnail.png")
def thumbnail(image_id: int):
    """A small copy for lists of images, made once and cached by content under MEDAL_HOME."""
    image = db.get_or_404(Image, image_id)
    target = Path(current_app.config["MEDAL_HOME"]) / "thumbnails" / f"{image.sha256}-{THUMBNAIL_PX}.png"
    if not target.exists():
        write_atomic(target, _thumbnail_png(services().store.path(image.path)))
    return send_file(target, mimetype="image/png", max_age=86400)


def _thumbnail_png(path: Path) -> bytes:
    with PILImage.open(path) as picture:
        small = picture.convert("L")
        small.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX), PILImage.Resampling.LANCZOS)  # never enlarges
    buffer = io.BytesIO()
    small.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


@bp.get("/predictions/<int:prediction_id>/heatmap.png")
def heatmap(prediction_id: int):
    """The Grad-CAM overlay; a request made while it is being computed waits for it (503 past a minute)."""
    prediction = visible_prediction(prediction_id)
    path = explanations.heatmap_path(prediction)
    if path is None:
        abort(404)
    return send_file(path, mimetype="image/png", max_age=3600)


def recent_labels(limit: int = RECENT_LABELS) -> list[Label]:
    """The signed-in user's latest answers, newest first, for the thumbnail strip beside the viewer."""
    if not current_user.is_authenticated:
        return []
    return list(
        db.session.execute(
            db.select(Label).filter_by(user_id=current_user.id).order_by(Label.id.desc()).limit(limit)
        ).scalars()
    )


# globals, not a context processor: macros imported from other templates (templates/_call.html) see them
bp.add_app_template_global(doubt.configured, "doubt_call")
bp.add_app_template_global(doubt.words, "call_words")


@bp.app_context_processor
def _image_lists() -> dict:
    # a function, not a list: only the pages that show the strip run the query
    return {"recent_labels": recent_labels}
