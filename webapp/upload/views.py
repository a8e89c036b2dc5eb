"""Upload page: drop X-rays, get a prediction for each."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request
from flask_login import current_user, login_required

from webapp.extensions import db
from webapp.inference import predictions
from webapp.upload.ingest import ImageMeta, IngestError, ingest

bp = Blueprint("upload", __name__, template_folder="templates")


@bp.get("/upload")
@login_required
def page():
    return render_template("upload/upload.html")


@bp.post("/upload")
@login_required
def receive():
    """Each file succeeds or fails on its own: one bad file never loses the others."""
    files = request.files.getlist("file")
    if not files:
        raise IngestError("Send one or more files in the field 'file'.")
    meta = ImageMeta.from_form(request.form)
    results = []
    for index, upload in enumerate(files):
        try:
            image, _ = ingest(upload.read(), origin="upload", meta=meta, user=current_user)
            db.session.commit()
            prediction = predictions.predict(image)
            db.session.commit()
            results.append(
                {"index": index, "ok": True, "image_id": image.id, "prediction": predictions.to_dict(prediction)}
            )
        except IngestError as error:
            db.session.rollback()
            results.append({"index": index, "ok": False, "error": str(error), "status": error.status})
    status = 200 if any(r["ok"] for r in results) else results[0]["status"]
    return jsonify(results=results), status
