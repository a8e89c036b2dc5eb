"""Images, predictions, the review queue and labels over the API."""
from __future__ import annotations

from flask import g, jsonify, request

from webapp import predictions, reviewqueue
from webapp.api import bp
from webapp.auth import token_required
from webapp.extensions import db
from webapp.ingest import ImageMeta, IngestError, ingest
from webapp.models import Image, Label


def image_to_dict(image: Image) -> dict:
    latest = predictions.latest(image.id)
    labels = db.session.execute(db.select(Label).filter_by(image_id=image.id).order_by(Label.id)).scalars()
    return {
        "id": image.id, "sha256": image.sha256, "width": image.width, "height": image.height,
        "format": image.source_format, "site": image.site, "patient_age": image.patient_age,
        "patient_sex": image.patient_sex, "is_gold": image.is_gold,
        "created_at": image.created_at.isoformat() + "Z",
        "prediction": predictions.to_dict(latest) if latest else None,
        "labels": [reviewqueue.label_to_dict(label) for label in labels],
    }


@bp.post("/images")
@token_required()
def upload_image():
    upload = request.files.get("file")
    if upload is None:
        raise IngestError("Send the image as multipart form field 'file'.")
    meta = ImageMeta.parse(request.form.get("site"), request.form.get("patient_age"),
                           request.form.get("patient_sex"))
    image, created = ingest(upload.read(), origin="api", meta=meta, user=g.api_user)
    db.session.commit()
    prediction = predictions.predict(image)
    db.session.commit()
    body = {"image_id": image.id, "created": created, "prediction": predictions.to_dict(prediction)}
    return jsonify(body), 201 if created else 200


@bp.get("/images/<int:image_id>")
@token_required()
def get_image(image_id: int):
    image = db.session.get(Image, image_id)
    if image is None:
        return jsonify(error=f"No image with id {image_id}.", status=404), 404
    return jsonify(image_to_dict(image))


@bp.get("/review/next")
@token_required()
def review_next():
    image = reviewqueue.next_for(g.api_user)
    if image is None:
        return jsonify(image=None, message="Nothing to review right now.")
    prediction = predictions.predict(image)
    db.session.commit()
    return jsonify(image=image_to_dict(image), prediction=predictions.to_dict(prediction),
                   strategy=reviewqueue.current_strategy())


@bp.post("/images/<int:image_id>/labels")
@token_required()
def add_label(image_id: int):
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("label"), str):
        return jsonify(error='Send JSON like {"label": "pneumonia"}.', status=400), 400
    prediction_id = body.get("prediction_id")
    spent = body.get("time_spent_ms")
    if prediction_id is not None and not isinstance(prediction_id, int):
        return jsonify(error="prediction_id must be an integer.", status=400), 400
    if spent is not None and not isinstance(spent, int):
        return jsonify(error="time_spent_ms must be an integer.", status=400), 400
    saved = reviewqueue.submit(g.api_user, image_id, body["label"], prediction_id=prediction_id,
                               time_spent_ms=spent, channel="api")
    if not saved.created:
        return jsonify(error="You already labeled this image; the first answer stands.",
                       status=409, label=reviewqueue.label_to_dict(saved.label)), 409
    return jsonify(reviewqueue.label_to_dict(saved.label)), 201
