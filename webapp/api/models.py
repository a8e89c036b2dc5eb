"""Model versions over the API (the registry issue adds approval, rejection and rollback)."""
from __future__ import annotations

from flask import jsonify

from webapp.api import bp
from webapp.auth import token_required
from webapp.services import services


@bp.get("/models")
@token_required()
def list_models():
    registry = services().registry
    versions = [{"version": info.version, "aliases": info.aliases, "run_id": info.run_id,
                 "tags": info.tags} for info in registry.versions()]
    return jsonify(model=registry.model_name, aliases=registry.aliases(), versions=versions)
