"""FHIR R4 export of a study over the API."""

from __future__ import annotations

from flask import Response, json

from webapp.api import bp
from webapp.api.schemas import reports as schemas
from webapp.integration import fhir


@bp.get("/images/<int:image_id>/fhir", tags=["reports"])
@bp.response(200, schemas.Document, content_type=fhir.MEDIA_TYPE, description="A FHIR R4 Bundle.")
def image_fhir(image_id: int):
    """The study as a FHIR R4 Bundle (collection): DiagnosticReport, Observation, Device, Provenance."""
    body = json.dumps(fhir.to_json(fhir.bundle(image_id)))
    return Response(body, mimetype=fhir.MEDIA_TYPE)
