"""Problem, the one shape of a failure a user sees, and the one handler that renders it:
JSON under /api/ (or when asked for), an error page in the browser."""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify, render_template, request
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


def json_errors(view):
    """Mark a page route that scripts call: its errors are JSON, like the API's."""
    view.json_errors = True
    return view


def wants_json() -> bool:
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    return (
        request.path.startswith("/api/")
        or getattr(view, "json_errors", False)
        or request.accept_mimetypes.best == "application/json"
    )


def render_problem(message: str, status: int, details: dict | None = None):
    db.session.rollback()
    if wants_json():
        return jsonify(**(details or {}), error=message, status=status), status
    return render_template("error.html", message=message, status=status), status


def discard_unread_body(response):
    """Read what is left of the request body (a 401, 403 or CSRF answer never looked at it), up to
    MAX_CONTENT_LENGTH, so the server can keep the connection alive: gunicorn closes a keep-alive
    connection whose unread body is over 64 KiB, and the client sees it dropped."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    length = request.content_length
    if response.status_code == 413 or (limit is not None and length is not None and length > limit):
        return response  # too large to read for nothing: closing the connection is the right answer
    try:
        stream = request.stream
        while stream.read(64 * 1024):
            pass
    except (HTTPException, OSError, ValueError):  # over the limit while reading, or the client went away
        pass
    return response


def register(app: Flask) -> None:
    app.after_request(discard_unread_body)

    @app.errorhandler(Problem)
    def problem(error: Problem):
        return render_problem(str(error), error.status, error.details)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return render_problem(MESSAGES.get(error.code or 500, error.description), error.code or 500)

    @app.errorhandler(OverflowError)
    def out_of_range(error: OverflowError):
        # a number from the request too large for the database driver (form and query fields are
        # parsed in many views; ids in URLs and JSON are bounded before they get this far)
        log.warning("number out of range on %s %s: %s", request.method, request.path, error)
        return render_problem("A number in the request is out of range.", 400)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_problem("Something went wrong on our side; nothing was stored.", 500)
