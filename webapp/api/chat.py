"""The assistant over the API."""

from __future__ import annotations

from flask import g, jsonify

from webapp.api import bp
from webapp.api.schemas import Error
from webapp.api.schemas import chat as schemas
from webapp.assistant import chat
from webapp.errors import Problem
from webapp.gold.goldset import visible_prediction


@bp.post("/predictions/<int:prediction_id>/chat", tags=["assistant"])
@bp.arguments(schemas.ChatAsk)
@bp.response(200, schemas.ChatAnswer)
@bp.alt_response(429, schema=Error, description="Too many questions from this user (security.chat_rate_limit).")
@chat.rate_limited
def ask(body: dict, prediction_id: int):
    """Ask the assistant about a prediction; it answers from the facts the system holds."""
    prediction = visible_prediction(prediction_id)
    message = body.get("message", body.get("question"))  # "question" is accepted as another name
    if not isinstance(message, str):
        raise Problem('Send JSON like {"message": "why?"} (optionally "mode": "plain").')
    thread, answer = chat.ask(prediction, g.api_user, message, body.get("mode"))
    return jsonify(chat.answer_to_dict(thread, answer))
