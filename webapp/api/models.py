"""Model versions, the gate verdicts, decisions, rollback and history over the API."""

from __future__ import annotations

from flask import g, jsonify

from registry.uris import CANDIDATE
from webapp.api import bp
from webapp.api.schemas import Error
from webapp.api.schemas import models as schemas
from webapp.approvals import DecisionError, decisions, gate_run, history
from webapp.services import services


@bp.get("/models", tags=["models"])
@bp.response(200, schemas.Models)
def list_models():
    """Every registered model version with its aliases (champion, candidate, previous) and gate verdict."""
    registry = services().registry
    verdicts = gate_run.gate_verdicts()
    versions = [
        {
            "version": info.version,
            "aliases": info.aliases,
            "run_id": info.run_id,
            "gate": verdicts.get(info.version),
            "tags": info.tags,
        }
        for info in registry.versions()
    ]
    return jsonify(model=registry.model_name, aliases=registry.aliases(), versions=versions)


@bp.get("/models/history", tags=["models"])
@bp.arguments(schemas.HistoryQuery, location="query")
@bp.response(200, schemas.Events)
def model_history(query: dict):
    """Who did what and why: gates, approvals, rejections, promotions, rollbacks, labels (`?kind=`)."""
    return jsonify(events=[history.event_to_dict(event) for event in history.from_request()])


def _reason(body: dict) -> str:
    if not body["reason"].strip():
        raise DecisionError('Send JSON like {"reason": "why"}.')
    return body["reason"]


@bp.post("/models/<int:version>/approve", tags=["models"])
@bp.arguments(schemas.DecisionRequest)
@bp.response(200, schemas.Decision)
@bp.alt_response(409, schema=Error, description="Not the current candidate, or the gate failed.")
def approve(body: dict, version: int):
    """Promote the candidate to champion (with `override`, although its gate failed)."""
    reason, override = _reason(body), body["override"]
    event = decisions.decide(version, g.api_user, approve=True, reason=reason, override=override)
    return jsonify(event=history.event_to_dict(event), aliases=services().registry.aliases())


@bp.post("/models/<int:version>/reject", tags=["models"])
@bp.arguments(schemas.DecisionRequest)
@bp.response(200, schemas.Decision)
@bp.alt_response(409, schema=Error, description="Not the current candidate.")
def reject(body: dict, version: int):
    """Reject the candidate, with the reason."""
    reason = _reason(body)
    event = decisions.decide(version, g.api_user, approve=False, reason=reason)
    return jsonify(event=history.event_to_dict(event), aliases=services().registry.aliases())


@bp.post("/models/<int:version>/gate", tags=["models"])
@bp.response(200, schemas.GateRun)
@bp.alt_response(409, schema=Error, description="Not the current candidate.")
def rerun_gate(version: int):
    """Run the gate again for the current candidate (e.g. after the champion changed)."""
    if services().registry.version_for(CANDIDATE) != version:
        raise DecisionError(f"Version {version} is not the current candidate.", 409)
    return jsonify(gate_run.report_document(gate_run.run_gate(version)))


@bp.get("/models/<int:version>/gate", tags=["models"])
@bp.response(200, schemas.GateRun)
def gate_report(version: int):
    """The version's latest gate report: every check in words, and each metric with its interval and
    the candidate's difference from the champion on the same gold images."""
    report = gate_run.latest_report(version)
    if report is None:
        raise DecisionError(f"Version {version} has not been through the gate.", 404)
    return jsonify(gate_run.report_document(report))


@bp.post("/models/rollback", tags=["models"])
@bp.arguments(schemas.RollbackRequest)
@bp.response(200, schemas.Decision)
@bp.alt_response(
    409,
    schema=Error,
    description="Nothing to roll back to (a model a rollback withdrew is never rolled back to), or another "
    "champion than `expected_champion` serves now (named).",
)
def rollback(body: dict):
    """Serve the previous champion again, with the reason."""
    event = decisions.rollback(g.api_user, _reason(body), expected_champion=body.get("expected_champion"))
    return jsonify(event=history.event_to_dict(event), aliases=services().registry.aliases())


@bp.get("/models/metrics", tags=["models"])
@bp.response(200, schemas.ModelMetrics)
def model_metrics():
    """The model dashboard's data: every version's gold-set metrics, promotions and rollbacks, the learning curve."""
    from webapp.dashboard.versions import metrics_document

    return jsonify(metrics_document())
