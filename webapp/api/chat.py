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
    body = json_object('{"message": "why?"}', message=str)
    if not isinstance(body.get("message"), str):
        raise Problem('Send JSON like {"message": "why?"}.')
    thread, answer = chat.ask(prediction, g.api_user, body["message"])
    return jsonify(chat.answer_to_dict(thread, answer))
