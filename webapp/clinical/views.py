"""Pages of the clinical-data area: a study's clinical data form, and the engineers' review of the
image + clinical data models."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user

from registry.uris import CHAMPION
from webapp.clinical import fusion, records
from webapp.extensions import db
from webapp.models import ClinicalModel
from webapp.services import services

bp = Blueprint("clinical", __name__, template_folder="templates")


# Jinja globals, not a context processor: the prediction macros are imported without the context
@bp.record_once
def _template_helpers(state) -> None:
    state.app.jinja_env.globals.update(
        clinical_lines=lambda image_id: records.describe(records.for_image(image_id)),
        clinical_prediction=fusion.prediction_for,  # the approved "image + clinical data" one, or None
        clinical_fields=records.FIELDS,
        clinical_values=records.for_image,
    )


@bp.post("/clinical/images/<int:image_id>")
def update(image_id: int):
    """A doctor adds or corrects a study's clinical data (blank fields are cleared)."""
    values = {name: request.form.get(name) or None for name in records.FIELDS if name in request.form}
    records.update(image_id, values, current_user)
    back = request.form.get("next", "")
    if not back.startswith("/") or back.startswith("//"):
        back = url_for("review.home")
    return redirect(back)


@bp.get("/clinical/models")
def models_page():
    rows = db.session.execute(db.select(ClinicalModel).order_by(ClinicalModel.id.desc())).scalars().all()
    studies = None
    if not rows:  # how far the worker's first fit is: counted as fit_if_due counts
        champion = services().registry.version_for(CHAMPION)
        studies = len(fusion.with_known_labels(fusion.training_studies(champion))) if champion is not None else 0
    return render_template(
        "clinical/models.html", models=rows, studies=studies, needed=services().settings.clinical.min_studies
    )


@bp.post("/clinical/models/<int:model_id>/decision")
def decide(model_id: int):
    fusion.decide(model_id, current_user, request.form.get("decision") == "approve", request.form.get("reason", ""))
    return redirect(url_for("clinical.models_page"))
