"""Study report pages: the report (HTML), its PDF and earlier revisions, and the amendment form."""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for
from flask_login import current_user

from assistant.facts import DISCLAIMER
from webapp.auth import access
from webapp.reports import bp, study
from webapp.services import services


def pdf_response(data: bytes, image_id: int, revision: int | None = None) -> Response:
    name = f"medal-study-{image_id}" + (f"-r{revision}" if revision else "") + ".pdf"
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    response.headers["Cache-Control"] = "private, no-store"  # a report is patient data
    return response


@bp.get("/images/<int:image_id>/report")
def study_page(image_id: int):
    content, report = study.issue(image_id)
    return render_template(
        "reports/study.html",
        pdf=False,
        c=content,
        report=report,
        image_src=None,
        overlay_src=None,
        notice=DISCLAIMER,
        header=study.header(),
        revisions=study.revisions(image_id),
        may_amend=access.may_label(current_user)
        and content.confirmation.status != study.PRELIMINARY
        and not content.image.is_gold,
        classes=services().class_names,
    )


@bp.get("/images/<int:image_id>/report.pdf")
def study_pdf(image_id: int):
    return pdf_response(study.pdf(image_id), image_id)


@bp.get("/images/<int:image_id>/report/<int:revision>.pdf")
def revision_pdf(image_id: int, revision: int):
    return pdf_response(study.revision_pdf(image_id, revision), image_id, revision)


@bp.post("/images/<int:image_id>/report/amend")
def amend(image_id: int):
    form = request.form
    report = study.amend(
        image_id, current_user, form.get("label", ""), form.get("reason", ""), form.get("revision", type=int)
    )
    flash(f"Issued revision {report.revision} ({report.status}): final label {report.label}.", "success")
    return redirect(url_for("reports.study_page", image_id=image_id))
