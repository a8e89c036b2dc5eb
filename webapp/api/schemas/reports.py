"""The study report's schemas: its revisions, and the documents (FHIR) exported as they are."""

from __future__ import annotations

from marshmallow import fields

from webapp.api.schemas import Response, timestamp


class ReportRevision(Response):
    image_id = fields.Integer(required=True)
    revision = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"description": "preliminary | final | amended"})
    label = fields.String(allow_none=True)
    labeled_by = fields.String(allow_none=True)
    model_version = fields.Integer(allow_none=True)
    created_at = timestamp(required=True)


class StudyReports(Response):
    image_id = fields.Integer(required=True)
    status = fields.String(required=True)
    current = fields.Nested(ReportRevision, required=True)
    revisions = fields.List(fields.Nested(ReportRevision), required=True)


class Document(Response):
    """A JSON document whose fields docs/ describes (dashboard, trust meter, drift)."""
