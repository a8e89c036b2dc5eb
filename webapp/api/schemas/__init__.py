"""The API's request and response schemas (marshmallow): flask-smorest validates requests with them and
writes them into the OpenAPI contract at /api/v1/openapi.json, so the contract and the behaviour are one.

Request schemas ignore fields they do not know (clients may send more than a version reads); response
schemas document the fields every answer has and allow more, so adding a field never breaks a client.

Here: the two bases, the field kinds they share and the one error shape; each area's schemas sit in
the module of its routes (images, models, chat, reports, monitoring)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from webapp.converters import MAX_INT


class Request(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE


class Response(ma.Schema):
    class Meta:
        unknown = ma.INCLUDE


def whole(minimum: int = 0, maximum: int = MAX_INT, **kwargs) -> fields.Integer:
    """An integer that must be a JSON number (never true/false or a string) and fit the database."""
    in_range = validate.Range(minimum, maximum, error=f"is out of range ({minimum} to {maximum}).")
    return fields.Integer(strict=True, validate=in_range, **kwargs)


class _StrictBoolean(fields.Boolean):
    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):  # "yes", 1 and "true" are a client's mistake, not a choice
            raise self.make_error("invalid")
        return value


def flag(**kwargs) -> fields.Boolean:
    """A yes/no that must be JSON true or false: a string or a number is a 400, never a guess."""
    return _StrictBoolean(**kwargs)


def timestamp(metadata: dict | None = None, **kwargs) -> fields.String:
    shown = {"format": "date-time", "example": "2026-12-02T08:00:00Z", **(metadata or {})}
    return fields.String(metadata=shown, **kwargs)


def number(**kwargs) -> fields.Float:
    """A JSON number that is null where there is nothing to measure (no reviews, no images)."""
    return fields.Float(allow_none=True, **kwargs)


class Error(Response):
    error = fields.String(required=True, metadata={"description": "What went wrong, for a person to read."})
    status = fields.Integer(required=True, metadata={"description": "The HTTP status, repeated."})
    errors = fields.Dict(metadata={"description": "Per field messages, when a request did not validate."})
