"""medal's web application: create_app() builds it; nothing happens at import time."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. `config` overrides Flask keys after config.yaml and the environment; the
    settings are read and validated here, once."""
    from webapp.config import flask_config, load_settings
    from webapp.extensions import csrf, db, login, migrate
    from webapp.services import init_services

    app = Flask(__name__, instance_relative_config=False)
    settings = load_settings()
    app.config.from_mapping(flask_config(settings))
    if config:
        app.config.from_mapping(config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("pytorch_lightning", "lightning", "lightning.pytorch", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    db.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()))
    login.init_app(app)
    csrf.init_app(app)
    init_services(app, settings)

    from webapp import errors
    from webapp.api import bp as api_bp
    from webapp.approvals.views import bp as approvals_bp
    from webapp.assistant.views import bp as assistant_bp
    from webapp.auth.views import bp as auth_bp
    from webapp.classes.views import bp as classes_bp
    from webapp.gold.views import bp as gold_bp
    from webapp.inference.views import bp as inference_bp
    from webapp.review.views import bp as review_bp
    from webapp.training.views import bp as training_bp
    from webapp.upload.views import bp as upload_bp

    for blueprint in (
        auth_bp,
        upload_bp,
        inference_bp,
        review_bp,
        gold_bp,
        training_bp,
        approvals_bp,
        assistant_bp,
        classes_bp,
    ):
        app.register_blueprint(blueprint)
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    csrf.exempt(api_bp)  # the API authenticates with bearer tokens only, never cookies
    errors.register(app)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "object-src 'none'; "
            "frame-ancestors 'none'",
        )
        return response

    from webapp.cli import register_commands

    register_commands(app)
    return app


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"
