"""The prior-studies strip on the reading pages, and the side-by-side view of two studies of one patient."""

from __future__ import annotations

from flask import Blueprint, render_template

from webapp.priors import studies

bp = Blueprint("priors", __name__, template_folder="templates")


@bp.get("/images/<int:image_id>/compare/<int:prior_id>")
def compare(image_id: int, prior_id: int):
    image, prior = studies.same_patient(image_id, prior_id)  # 404 for any film of another patient
    return render_template(
        "priors/compare.html",
        image=image,
        prior=prior,
        current=studies.summary(image),
        other=studies.summary(prior),
    )


@bp.app_context_processor
def _prior_studies() -> dict:
    # a function, not a list: only the pages that include the strip run the query
    return {"prior_studies": studies.of}
