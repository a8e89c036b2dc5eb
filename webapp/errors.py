"""Error handlers: roll back, then a helpful page, or a JSON problem under /api/."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from webapp.extensions import db
from webapp.problems import Problem
from webapp.serving import NoChampion

log = logging.getLogger(__name__)


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def problem(message: str, status: int):
    db.session.rollback()
    if wants_json():
        return jsonify(error=message, status=status), status
    return render_template("error.html", message=message, status=status), status


def register(app: Flask) -> None:
    @app.errorhandler(Problem)
    def bad_request(error: Problem):
        return problem(str(error), error.status)

    @app.errorhandler(NoChampion)
    def no_model(error: NoChampion):
        return problem(str(error), 503)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        messages = {413: "The upload is too large.", 404: "Not found.",
                    403: "Your role does not allow this.", 405: "Method not allowed."}
        return problem(messages.get(error.code, error.description), error.code or 500)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem("Something went wrong on our side; nothing was stored.", 500)
