"""Upload page: drop X-rays, get a prediction for each."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, render_template, request, url_for
from flask_login import current_user

from webapp.classes import catalog
from webapp.errors import Problem, json_errors
from webapp.extensions import db
from webapp.inference import doubt, explanations, predictions
from webapp.upload.ingest import ImageMeta, IngestError, upload

bp = Blueprint("upload", __name__, template_folder="templates")
log = logging.getLogger(__name__)


@bp.get("/upload")
def page():
    return render_template("upload/upload.html")


@bp.post("/upload")
@json_errors  # the page's script reads every answer, a 413 or a bad field included, as JSON
def receive():
    """Each file succeeds or fails on its own: one bad file never loses the others."""
    files = request.files.getlist("file")
    if not files:
        raise IngestError("Send one or more files in the field 'file'.")
    meta = ImageMeta.from_form(request.form)
    results = [_receive_one(index, file.read(), meta) for index, file in enumerate(files)]
    status = 200 if any(r["ok"] for r in results) else results[0]["status"]
    return jsonify(results=results), status


def _receive_one(index: int, data: bytes, meta: ImageMeta) -> dict:
    try:
        done = upload(data, origin="upload", meta=meta, user=current_user)
    except Problem as error:
        db.session.rollback()
        return {"index": index, "ok": False, "error": str(error), "status": error.status}
    except Exception:  # a fault of ours on one file still leaves the others their results
        db.session.rollback()
        log.exception("upload of file %d failed", index)
        return {
            "index": index,
            "ok": False,
            "error": "Something went wrong on our side; nothing was stored.",
            "status": 500,
        }
    reupload: dict = {}
    if done.completion is not None:  # the page says so, links the study and names what was kept
        reupload = done.completion.to_dict() | {
            "details": done.completion.details(),
            "study_url": url_for("review.prediction_page", prediction_id=done.prediction.id),
        }
    return {
        "index": index,
        "ok": True,
        "already": not done.created,
        **reupload,
        "image_id": done.image.id,
        "prediction": predictions.to_dict(done.prediction),
        # what the page shows a person: the call ("Uncertain between ...") and the classes' display names
        "call": doubt.words(done.prediction.probabilities),
        "shown_as": {name: catalog.display(name) for name in done.prediction.probabilities},
        # the answer does not wait for Grad-CAM: the URL waits for the heat map and then sends it
        "heatmap": {
            "status": explanations.status(done.prediction),
            "url": url_for("inference.heatmap", prediction_id=done.prediction.id),
        },
    }
