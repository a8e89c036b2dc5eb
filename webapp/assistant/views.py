"""The chat assistant beside each prediction (the page side; the API has its own route)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask_login import current_user

from webapp.assistant import chat
from webapp.errors import json_errors
from webapp.gold.goldset import visible_prediction
from webapp.jsonbody import json_object

bp = Blueprint("assistant", __name__, template_folder="templates")


@bp.post("/predictions/<int:prediction_id>/chat")
@json_errors  # chat.js shows the error's text in the thread
@chat.rate_limited
def ask(prediction_id: int):
    prediction = visible_prediction(prediction_id)
    body = json_object('{"message": "why?", "mode": "plain"}', message=str, mode=str)
    thread, answer = chat.ask(prediction, current_user, body.get("message") or "", body.get("mode"))
    return jsonify(chat.answer_to_dict(thread, answer))


@bp.get("/predictions/<int:prediction_id>/chat")
@json_errors
def thread(prediction_id: int):
    prediction = visible_prediction(prediction_id)
    return jsonify(messages=chat.history(prediction, current_user))
