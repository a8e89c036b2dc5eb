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


# marshmallow's words for the common mistakes, as the rest of medal's messages say them
_PLAIN = {
    "Missing data for required field.": "is required.",
    "Not a valid integer.": "must be an integer.",
    "Not a valid number.": "must be a number.",
    "Not a valid string.": "must be a string.",
    "Not a valid boolean.": "must be true or false.",
    "Unknown field.": "is not a field of this request.",
    "Invalid input type.": "Send a JSON object (the schemas are in /api/v1/openapi.json).",
}


def _field_messages(messages: dict) -> str:
    """webargs' {location: {field: [message, ...]}} as one sentence a person can act on:
    '"prediction_id" must be an integer.'"""
    parts = []
    for fields in messages.values():
        for name, problems in fields.items() if isinstance(fields, dict) else [("_schema", fields)]:
            for text in problems if isinstance(problems, list) else [problems]:
                text = _PLAIN.get(text, text) if isinstance(text, str) else str(text)
                if name == "_schema" or name in text:
                    parts.append(text)
                elif text[:1].islower():
                    parts.append(f'"{name}" {text}')
                else:
                    parts.append(f'"{name}": {text}')
    return " ".join(parts) or "The request is not valid."


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
        invalid = getattr(error, "data", {}).get("messages")  # an API request that did not match its schema
        if invalid:
            return render_problem(_field_messages(invalid), error.code or 400, {"errors": invalid})
        return render_problem(MESSAGES.get(error.code or 500, error.description or ""), error.code or 500)

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
