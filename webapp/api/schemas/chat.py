"""The assistant's schemas: a question about a prediction and its answer."""

from __future__ import annotations

from marshmallow import fields, validate

from webapp.api.schemas import Request, Response


class ChatAsk(Request):
    message = fields.String(validate=validate.Length(1, 2000), metadata={"example": "Why?"})
    question = fields.String(validate=validate.Length(1, 2000), metadata={"description": "Another name for message."})
    mode = fields.String(
        allow_none=True, validate=validate.Length(max=20), metadata={"description": "plain: for patients."}
    )


class ChatAnswer(Response):
    thread_id = fields.Integer(required=True)
    answer = fields.String(required=True)
    facts = fields.List(fields.String(), required=True, metadata={"description": "The facts the answer used."})
    intent = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    reminder = fields.String()
