"""Images, predictions, the review queue and labels over the API."""

from __future__ import annotations

from flask import g, jsonify, request, url_for

from webapp.api import bp
from webapp.api.schemas import Error
from webapp.api.schemas import images as schemas
from webapp.clinical import fusion as clinical_fusion
from webapp.clinical import records as clinical_records
from webapp.errors import Problem
from webapp.extensions import db
from webapp.gold import goldset
from webapp.inference import explanations, predictions
from webapp.models import Image, Label
from webapp.priors import studies as prior_studies
from webapp.review import queue
from webapp.upload import deid
from webapp.upload.ingest import ImageMeta, IngestError, upload


def image_to_dict(image: Image) -> dict:
    latest = predictions.latest(image.id)
    labels = db.session.execute(db.select(Label).filter_by(image_id=image.id).order_by(Label.id)).scalars()
    priors = prior_studies.of(image)
    return {
        "id": image.id,
        "sha256": image.sha256,
        "width": image.width,
        "height": image.height,
        "format": image.source_format,
        "site": image.site,
        "patient_age": image.patient_age,
        "patient_sex": image.patient_sex,
        "is_gold": image.is_gold,
        "created_at": image.created_at.isoformat() + "Z",
        "prediction": predictions.to_dict(latest) if latest else None,
        "deidentification": deid.describe(image.deidentification),  # None for PNG and JPEG
        "clinical": clinical_records.for_image(image.id),
        # beside the image-only prediction, never in its place; None until an engineer approved a model
        "clinical_prediction": clinical_fusion.prediction_for(latest),
        "labels": [queue.label_to_dict(label) for label in labels],
        "priors": [prior.to_dict() for prior in priors.shown],
        "priors_more": priors.more,
    }


@bp.post("/images", tags=["images"])
@bp.arguments(schemas.Upload, location="form_and_files", as_kwargs=True)
@bp.response(201, schemas.Uploaded, description="Stored and predicted.")
@bp.alt_response(
    200,
    schema=schemas.Uploaded,
    description="These bytes were stored before: `already` is true, `message` says so with the study's id, "
    "`image_url` links it; the fields sent were added where the study had none (`added`), and where they "
    "differ the study's values were kept (`kept`). Nothing else changed and nothing new was stored.",
)
@bp.alt_response(409, schema=Error, description="A gold image awaiting its blind reads.")
@bp.alt_response(415, schema=Error, description="Not a PNG, JPEG or chest DICOM radiograph.")
def upload_image(**_validated):
    """Upload a chest X-ray (PNG, JPEG or DICOM) with its optional patient and clinical fields; the
    champion predicts it at once; its heat map follows (`heatmap_status`). One image per request:
    several `file` parts are a 400."""
    files = request.files.getlist("file")
    if not files:
        raise IngestError("Send the image as multipart form field 'file'.")
    if len(files) > 1:  # the form's fields describe one patient's image; none is stored, none dropped
        raise IngestError(
            f"Send one image per request (this one had {len(files)} in 'file'); nothing was stored. "
            "The upload page takes many files at once."
        )
    file = files[0]
    meta = ImageMeta.from_form(request.form)
    done = upload(file.read(), origin="api", meta=meta, user=g.api_user)
    body = {
        "image_id": done.image.id,
        "created": done.created,
        "prediction": predictions.to_dict(done.prediction),
        # Grad-CAM runs after the answer: "pending" until the heat map (and `location`) is stored
        "heatmap_status": explanations.status(done.prediction),
        "already": not done.created,
    }
    if done.completion is not None:  # said, with the study's link: never a silent attach
        body |= done.completion.to_dict() | {"image_url": url_for("api.get_image", image_id=done.image.id)}
    return jsonify(body), 201 if done.created else 200


@bp.get("/images/<int:image_id>", tags=["images"])
@bp.response(200, schemas.ImageRecord)
def get_image(image_id: int):
    """An image with its latest prediction and its labels."""
    # a gold image awaiting its reads answers 404 like a missing one: blind reads stay blind
    return jsonify(image_to_dict(goldset.visible_image(image_id)))


@bp.put("/images/<int:image_id>/clinical", tags=["images"])
@bp.arguments(schemas.Clinical)
@bp.response(200, schemas.ClinicalUpdated)
def put_clinical(body: dict, image_id: int):
    """Add or correct a study's clinical data: {"crp_mg_l": 85, "spo2_pct": null} (null clears a field)."""
    return jsonify(image_id=image_id, clinical=clinical_records.update(image_id, body, g.api_user))


@bp.get("/review/next", tags=["review"])
@bp.response(200, schemas.Served)
def review_next():
    """The next image the model is least sure of, reserved for you (`active_learning.claim_seconds`)."""
    served = queue.serve(g.api_user)
    your_skips = queue.skips_by(g.api_user)
    if served is None:
        return jsonify(image=None, message="Nothing to review right now.", your_skips=your_skips)
    return jsonify(
        image=image_to_dict(served.image),
        prediction=predictions.to_dict(served.prediction),
        strategy=queue.current_strategy(),
        skips=queue.skips_of_image(served.image.id),
        your_skips=your_skips,
    )


@bp.post("/images/<int:image_id>/skip", tags=["review"])
@bp.response(200, schemas.Skipped)
@bp.alt_response(409, schema=Error, description="The image is not the one served to you.")
def skip_image(image_id: int):
    """Pass on the image the queue served you: it goes back to the queue for another doctor and is
    never served to you again; `GET /review/next` then serves the next one. Skipping twice counts once."""
    queue.skip(g.api_user, image_id)
    return jsonify(image_id=image_id, skips=queue.skips_of_image(image_id), your_skips=queue.skips_by(g.api_user))


@bp.post("/images/<int:image_id>/labels", tags=["review"])
@bp.arguments(schemas.LabelRequest)
@bp.response(201, schemas.Label)
@bp.alt_response(409, schema=Error, description="You already labeled this image; the first answer stands.")
def add_label(body: dict, image_id: int):
    """Confirm or correct the prediction: the doctor's label, with the report's findings and impression
    and a comment; or "unsure" (the class leant to, the model's call without one), which never trains."""
    saved = queue.submit(
        g.api_user,
        image_id,
        body.get("label") or "",
        prediction_id=body.get("prediction_id"),
        time_spent_ms=body.get("time_spent_ms"),
        channel="api",
        unsure=body["unsure"],
        findings=body.get("findings"),
        impression=body.get("impression"),
        comment=body.get("comment"),
    )
    if not saved.created:
        raise Problem(
            "You already labeled this image; the first answer stands.", 409, label=queue.label_to_dict(saved.label)
        )
    return jsonify(queue.label_to_dict(saved.label)), 201
