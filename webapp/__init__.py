"""medal's web application: create_app() builds it; nothing happens at import time."""
from __future__ import annotations

import logging
import os
from typing import Any, Mapping

from flask import Flask


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. `config` overrides keys after config.yaml and the environment."""
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
    init_services(app)

    from webapp import auth, errors
    from webapp.api import bp as api_bp
    from webapp.approvals import bp as approvals_bp
    from webapp.assistant import bp as assistant_bp
    from webapp.review import bp as review_bp
    from webapp.training import bp as training_bp
    from webapp.upload import bp as upload_bp

    app.register_blueprint(auth.bp)
    app.register_blueprint(upload_bp)
    app.register_blueprint(review_bp)
    app.register_blueprint(training_bp)
    app.register_blueprint(approvals_bp)
    app.register_blueprint(assistant_bp)
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    csrf.exempt(api_bp)  # the API authenticates with bearer tokens only, never cookies
    errors.register(app)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                    "object-src 'none'; "
                                    "frame-ancestors 'none'")
        return response

    from webapp.cli import register_commands

    register_commands(app)
    return app


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"
