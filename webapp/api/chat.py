"""The assistant over the API."""
from __future__ import annotations

from flask import g, jsonify, request

from webapp import chat
from webapp.api import bp
from webapp.auth import token_required
from webapp.extensions import db
from webapp.models import Prediction


@bp.post("/predictions/<int:prediction_id>/chat")
@token_required()
def ask(prediction_id: int):
    prediction = db.session.get(Prediction, prediction_id)
    if prediction is None:
        return jsonify(error=f"No prediction with id {prediction_id}.", status=404), 404
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return jsonify(error='Send JSON like {"message": "why?"}.', status=400), 400
    try:
        thread, answer = chat.ask(prediction, g.api_user, body["message"])
    except ValueError as error:
        return jsonify(error=str(error), status=400), 400
    return jsonify(chat.answer_to_dict(thread, answer))
