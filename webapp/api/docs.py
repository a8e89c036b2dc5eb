"""The API's documentation page, /api/v1/docs: the OpenAPI contract rendered on the server (no script
from a CDN), next to the machine-readable /api/v1/openapi.json it is drawn from."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

bp = Blueprint("api_docs", __name__, template_folder="templates")
METHODS = ("get", "post", "put", "patch", "delete")


@bp.get("/api/v1/docs")
def page():
    spec = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    operations = [
        {"path": path, "method": method.upper(), **operation}
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]
    operations.sort(key=lambda op: ((op.get("tags") or [""])[0], op["path"], METHODS.index(op["method"].lower())))
    return render_template("api/docs.html", spec=spec, operations=operations, schemas=spec["components"]["schemas"])
