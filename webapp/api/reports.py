"""Study reports over the API: the current PDF and the list of issued revisions."""

from __future__ import annotations

from flask import jsonify

from webapp.api import bp
from webapp.api.schemas import reports as schemas
from webapp.reports import study
from webapp.reports.study_views import pdf_response


@bp.get("/images/<int:image_id>/report.pdf", tags=["reports"])
@bp.response(200, content_type="application/pdf", description="The study report's current revision.")
def study_report_pdf(image_id: int):
    """The study report as a PDF (preliminary, final or amended)."""
    return pdf_response(study.pdf(image_id), image_id)


@bp.get("/images/<int:image_id>/report", tags=["reports"])
@bp.response(200, schemas.StudyReports)
def study_report(image_id: int):
    """The study's status and its issued revisions, newest first (issuing the current one if needed)."""
    _, current = study.issue(image_id)
    return jsonify(
        image_id=image_id,
        status=current.status,
        current=study.to_dict(current),
        revisions=[study.to_dict(report) for report in study.revisions(image_id)],
    )
