"""Model versions, the gate verdicts, decisions, rollback and history over the API."""
from __future__ import annotations

from flask import g, jsonify, request

from registry.uris import CANDIDATE
from webapp import promotion
from webapp.api import bp
from webapp.auth import token_required
from webapp.services import services


@bp.get("/models")
@token_required("engineer")
def list_models():
    registry = services().registry
    verdicts = promotion.gate_verdicts()
    versions = [{"version": info.version, "aliases": info.aliases, "run_id": info.run_id,
                 "gate": verdicts.get(info.version), "tags": info.tags} for info in registry.versions()]
    return jsonify(model=registry.model_name, aliases=registry.aliases(), versions=versions)


@bp.get("/models/history")
@token_required("engineer")
def model_history():
    return jsonify(events=[promotion.event_to_dict(event) for event in promotion.history()])


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("reason"), str) or not body["reason"].strip():
        raise promotion.DecisionError('Send JSON like {"reason": "why"}.')
    if not isinstance(body.get("override", False), bool):
        raise promotion.DecisionError('"override" is true or false.')
    expected = body.get("expected_champion")
    if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool)):
        raise promotion.DecisionError('"expected_champion" is a version number.')
    return body


def _reason() -> tuple[str, bool]:
    body = _body()
    return body["reason"], body.get("override", False)


@bp.post("/models/<int:version>/approve")
@token_required("engineer")
def approve(version: int):
    reason, override = _reason()
    event = promotion.decide(version, g.api_user, approve=True, reason=reason, override=override)
    return jsonify(event=promotion.event_to_dict(event), aliases=services().registry.aliases())


@bp.post("/models/<int:version>/reject")
@token_required("engineer")
def reject(version: int):
    reason, _ = _reason()
    event = promotion.decide(version, g.api_user, approve=False, reason=reason)
    return jsonify(event=promotion.event_to_dict(event), aliases=services().registry.aliases())


@bp.post("/models/<int:version>/gate")
@token_required("engineer")
def rerun_gate(version: int):
    """Run the gate again for the current candidate (e.g. after the champion changed)."""
    if services().registry.version_for(CANDIDATE) != version:
        raise promotion.DecisionError(f"Version {version} is not the current candidate.", 409)
    report = promotion.run_gate(version)
    return jsonify(version=version, champion_version=report.champion_version, passed=report.passed,
                   failures=report.result["failures"], gold_snapshot=report.snapshot.content_hash)


@bp.post("/models/rollback")
@token_required("engineer")
def rollback():
    body = _body()
    event = promotion.rollback(g.api_user, body["reason"], expected_champion=body.get("expected_champion"))
    return jsonify(event=promotion.event_to_dict(event), aliases=services().registry.aliases())
