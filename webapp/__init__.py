"""medal's web application: create_app() builds it; nothing happens at import time."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, request


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. `config` overrides Flask keys after config.yaml and the environment; the
    settings are read and validated here, once."""
    from assistant.facts import DISCLAIMER
    from webapp.auth import access
    from webapp.classes import catalog
    from webapp.config import flask_config, load_settings
    from webapp.extensions import csrf, db, limiter, login, migrate
    from webapp.services import init_services

    app = Flask(__name__, instance_relative_config=False)
    settings = load_settings()
    app.config.from_mapping(flask_config(settings))
    app.config["RATELIMIT_STORAGE_URI"] = settings.security.rate_limit_storage
    if settings.security.proxy_hops:  # behind the TLS proxy: per-client limits need the client's address
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.security.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    if config:
        app.config.from_mapping(config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("pytorch_lightning", "lightning", "lightning.pytorch", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    db.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()))
    login.init_app(app)
    # the route -> roles table runs first, so a stranger is told to log in before anything else
    app.before_request(access.enforce)
    csrf.init_app(app)
    limiter.init_app(app)
    app.jinja_env.globals["may"] = access.may
    app.jinja_env.globals["disclaimer"] = DISCLAIMER  # every page's footer
    app.jinja_env.filters["classname"] = catalog.display  # {{ name|classname }}: what a person reads
    init_services(app, settings)

    from webapp import converters, errors
    from webapp.api import bp as api_bp
    from webapp.approvals.views import bp as approvals_bp
    from webapp.assistant.views import bp as assistant_bp
    from webapp.auth.views import bp as auth_bp
    from webapp.classes.views import bp as classes_bp
    from webapp.clinical.views import bp as clinical_bp
    from webapp.dashboard.views import bp as dashboard_bp
    from webapp.gold.views import bp as gold_bp
    from webapp.inference.views import bp as inference_bp
    from webapp.priors.views import bp as priors_bp
    from webapp.reports import bp as reports_bp
    from webapp.review.views import bp as review_bp
    from webapp.training.views import bp as training_bp
    from webapp.upload.views import bp as upload_bp

    converters.register(app)  # bounded <int:...> ids; before the blueprints add their rules
    for blueprint in (
        auth_bp,
        upload_bp,
        inference_bp,
        review_bp,
        priors_bp,
        gold_bp,
        training_bp,
        approvals_bp,
        assistant_bp,
        classes_bp,
        clinical_bp,
        dashboard_bp,
        reports_bp,
    ):
        app.register_blueprint(blueprint)
    from webapp.api import contract, docs

    contract.init_app(app, api_bp, version=_version())  # registers the API with its OpenAPI contract
    csrf.exempt(api_bp)  # the API authenticates with bearer tokens only, never cookies
    app.register_blueprint(docs.bp)
    errors.register(app)
    from webapp import monitoring

    monitoring.init_app(app)  # request latency hooks, /metrics and the trust, activity and drift pages

    secure = settings.security.secure_cookies

    @app.after_request
    def security_headers(response):
        if secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
        )
        if request.endpoint != "static":  # pages, images and API answers hold patient data: never cached
            response.headers["Cache-Control"] = "no-store"
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; object-src 'none'; frame-ancestors 'none'",
        )
        return response

    from webapp.cli import register_commands

    register_commands(app)
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("medal")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0"


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"
