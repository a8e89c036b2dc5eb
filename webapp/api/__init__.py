"""REST API under /api/v1: bearer tokens (`medal tokens create USER`), JSON in and out."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from webapp.api import chat, fhir, images, models, monitoring, reports  # noqa: E402,F401  (routes register on bp)
