"""REST API under /api/v1: bearer tokens (`medal tokens create USER`), JSON in and out, with its OpenAPI
contract generated from these routes and their schemas (webapp/api/contract.py)."""

from webapp.api.contract import ApiBlueprint
from webapp.jsonbody import check_json_body

bp = ApiBlueprint("api", __name__, description="medal's REST API")
bp.before_request(check_json_body)

from webapp.api import chat, fhir, images, models, monitoring, reports  # noqa: E402,F401  (routes register on bp)
