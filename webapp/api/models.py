"""Model versions, the gate verdicts, decisions, rollback and history over the API."""

from __future__ import annotations

from flask import g, jsonify

from registry.uris import CANDIDATE
from webapp.api import bp
from webapp.approvals import DecisionError, decisions, gate_run, history
from webapp.auth.roles import token_required
from webapp.jsonbody import json_object
from webapp.services import services


@bp.get("/models")
@token_required("engineer")
def list_models():
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


@bp.get("/models/history")
@token_required("engineer")
def model_history():
    return jsonify(events=[history.event_to_dict(event) for event in history.from_request()])


def _body() -> dict:
    body = json_object('{"reason": "why"}', reason=str, override=bool, expected_champion=int)
    if not isinstance(body.get("reason"), str) or not body["reason"].strip():
        raise DecisionError('Send JSON like {"reason": "why"}.')
    return body


def _reason() -> tuple[str, bool]:
    body = _body()
    return body["reason"], body.get("override", False)


@bp.post("/models/<int:version>/approve")
@token_required("engineer")
def approve(version: int):
    reason, override = _reason()
    event = decisions.decide(version, g.api_user, approve=True, reason=reason, override=override)
    return jsonify(event=history.event_to_dict(event), aliases=services().registry.aliases())


@bp.post("/models/<int:version>/reject")
@token_required("engineer")
def reject(version: int):
    reason, _ = _reason()
    event = decisions.decide(version, g.api_user, approve=False, reason=reason)
    return jsonify(event=history.event_to_dict(event), aliases=services().registry.aliases())


@bp.post("/models/<int:version>/gate")
@token_required("engineer")
def rerun_gate(version: int):
    """Run the gate again for the current candidate (e.g. after the champion changed)."""
    if services().registry.version_for(CANDIDATE) != version:
        raise DecisionError(f"Version {version} is not the current candidate.", 409)
    report = gate_run.run_gate(version)
    return jsonify(
        version=version,
        champion_version=report.champion_version,
        passed=report.passed,
        failures=report.result["failures"],
        gold_snapshot=report.snapshot.content_hash,
    )


@bp.post("/models/rollback")
@token_required("engineer")
def rollback():
    body = _body()
    event = decisions.rollback(g.api_user, body["reason"], expected_champion=body.get("expected_champion"))
    return jsonify(event=history.event_to_dict(event), aliases=services().registry.aliases())


@bp.get("/models/metrics")
@token_required("engineer")
def model_metrics():
    """The model dashboard's data: every version's gold-set metrics, promotions and rollbacks, the learning curve."""
    from webapp.reports.dashboard import metrics_document

    return jsonify(metrics_document())
