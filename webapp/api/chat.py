"""The assistant over the API."""

from __future__ import annotations

from flask import g, jsonify

from webapp.api import bp
from webapp.assistant import chat
from webapp.auth.roles import token_required
from webapp.errors import Problem
from webapp.gold.goldset import visible_prediction
from webapp.jsonbody import json_object


@bp.post("/predictions/<int:prediction_id>/chat")
@token_required()
def ask(prediction_id: int):
    prediction = visible_prediction(prediction_id)
    body = json_object('{"message": "why?", "mode": "plain"}', message=str, question=str, mode=str)
    message = body.get("message", body.get("question"))  # "question" is accepted as another name
    if not isinstance(message, str):
        raise Problem('Send JSON like {"message": "why?"} (optionally "mode": "plain").')
    thread, answer = chat.ask(prediction, g.api_user, message, body.get("mode"))
    return jsonify(chat.answer_to_dict(thread, answer))
