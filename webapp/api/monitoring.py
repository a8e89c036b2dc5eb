"""API routes (monitoring)."""

from flask import jsonify

from webapp.api import bp
from webapp.api.schemas import monitoring as schemas


@bp.get("/monitoring/trust", tags=["monitoring"])
@bp.response(200, schemas.TrustReport)
def trust_meter():
    """The trust meter as JSON: agreement per class and site, intervals, readiness and why."""
    from webapp.monitoring.views import current_report

    return jsonify(current_report().to_dict())


@bp.get("/monitoring/drift", tags=["monitoring"])
@bp.response(200, schemas.DriftReport)
def monitoring_drift():
    """Drift per site, age band and sex against the champion's training data: each group's statistics,
    every check (test, value, threshold, drifting) and the reference model version."""
    from webapp.monitoring import drift

    return jsonify(drift.report())
