"""Problem, the one shape of a failure a user sees, and the one handler that renders it:
JSON under /api/ (or when asked for), an error page in the browser."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from webapp.extensions import db

log = logging.getLogger(__name__)
MESSAGES = {
    413: "The upload is too large.",
    404: "Not found.",
    403: "Your role does not allow this.",
    405: "Method not allowed.",
    401: "Log in first.",
}


class Problem(ValueError):
    """Raised by services for a request that cannot be done as asked: a message for the user
    and the HTTP status to answer with."""

    status = 400

    def __init__(self, message: str, status: int | None = None, **details):
        super().__init__(message)
        if status is not None:
            self.status = status
        self.details = details  # extra JSON fields for API callers, e.g. the label that stands


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def render_problem(message: str, status: int, details: dict | None = None):
    db.session.rollback()
    if wants_json():
        return jsonify(**(details or {}), error=message, status=status), status
    return render_template("error.html", message=message, status=status), status


def register(app: Flask) -> None:
    @app.errorhandler(Problem)
    def problem(error: Problem):
        return render_problem(str(error), error.status, error.details)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return render_problem(MESSAGES.get(error.code or 500, error.description), error.code or 500)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_problem("Something went wrong on our side; nothing was stored.", 500)
