"""The trust meter page: where model and doctors agree, per class and site (webapp/reports/trust.py)."""

from __future__ import annotations

from flask import render_template, request

from webapp.errors import Problem
from webapp.reports import bp, trust
from webapp.services import services


def requested_version() -> int | None:
    """?version=N keeps one model version's predictions; absent or empty means every version."""
    raw = request.args.get("version", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 2**31:
        raise Problem("version must be a model version number, e.g. ?version=3.")
    return int(raw)


def current_report() -> trust.TrustReport:
    found = services()
    return trust.report(found.settings.trust, found.class_names, requested_version())


@bp.get("/trust")
def trust_page():
    return render_template("reports/trust.html", report=current_report())
