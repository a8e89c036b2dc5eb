"""The OpenAPI 3.1 contract, generated from the code: flask-smorest collects the routes and their
marshmallow schemas (webapp/api/schemas/), and the route -> roles table (webapp/auth/access.py) adds who
may call each operation, so the spec at /api/v1/openapi.json cannot drift from what the API does.

Errors keep medal's one shape ({"error": ..., "status": ...}, webapp/errors.py) instead of
flask-smorest's own handler, and a request that does not match its schema is a 400 naming the fields."""

from __future__ import annotations

import flask_smorest
from flask import Flask
from webargs import core
from webargs.flaskparser import FlaskParser
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import MultiDict

from webapp import jsonbody
from webapp.api import schemas
from webapp.auth import access

ROLE_WORDS = {
    access.PUBLIC: "anyone",
    access.SIGNED_IN: "any user with a token",
    access.LABELERS: "the roles in security.label_roles (default: doctor)",
    access.ADJUDICATORS: "adjudicators",
    access.LABELERS_OR_ADJUDICATORS: "the roles in security.label_roles, and adjudicators",
}
# the answers every operation may give besides its own, by the kind of caller it admits
COMMON_ERRORS = {
    "400": "The request is not valid; `error` says why and `errors` names the fields.",
    "401": "No valid bearer token.",
    "403": "The token's user does not have the role this needs.",
    "413": "The upload is too large.",
}


class ApiParser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400  # a request that does not match its schema is a 400 (webargs says 422)

    def _raw_load_json(self, req):
        """The body through medal's one JSON reader (webapp/jsonbody.py): a body of another type is a
        415, where webargs would read it as no body at all. No body at all is missing, so the schema
        names the fields it requires."""
        if not req.get_data(cache=True):
            return core.missing
        return jsonbody.json_body(jsonbody.SCHEMA_EXAMPLE)


parser = ApiParser()


@parser.location_loader("form_and_files")
def _form_and_files(request, schema):
    """One multipart body: the upload's file and its form fields, validated by one schema."""
    data = MultiDict(request.form)
    data.update(request.files)
    return MultiDictProxy(data, schema)


class ApiBlueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = parser
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **flask_smorest.Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "form_and_files": "multipart/form-data",
    }


class ContractApi(flask_smorest.Api):
    ERROR_SCHEMA = schemas.Error  # medal's one error shape, documented for every status

    def _register_error_handlers(self):
        """webapp/errors.py handles every error for the whole app (pages and API alike)."""


def init_app(app: Flask, blueprint: ApiBlueprint, version: str) -> ContractApi:
    app.config.update(
        API_TITLE="medal",
        API_VERSION=version,
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {
                "description": (
                    "The REST API of medal, an active-learning feedback platform for chest X-ray diagnosis. "
                    "Authenticate with a bearer token (`medal tokens create USER`). Every prediction names "
                    "the model version that made it; every label names who gave it."
                )
            },
            "servers": [{"url": "/"}],
        },
    )
    api = ContractApi(app)
    api.spec.components.security_scheme(
        "bearerToken", {"type": "http", "scheme": "bearer", "description": "A token from `medal tokens create`."}
    )
    api.register_blueprint(blueprint, url_prefix="/api/v1")
    document_access(app, api)
    return api


def _rule_words(rule: access.Rule) -> str:
    if isinstance(rule, tuple):
        return " or ".join((*rule, "admin"))
    return ROLE_WORDS[rule]


def document_access(app: Flask, api: ContractApi) -> None:
    """Security, the roles and the common errors of every operation, from the ACCESS table."""
    paths = api.spec._paths  # apispec's path() replaces a path's operations; these are amended in place
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        path = _openapi_path(rule.rule)
        allowed = access.ACCESS.get(rule.endpoint)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation = paths.get(path, {}).get(method.lower())
            if operation is None:
                continue
            operation.setdefault("operationId", rule.endpoint.removeprefix("api."))
            responses = operation.setdefault("responses", {})
            if allowed is None:
                operation["description"] = "Refused for everyone: the route has no entry in the access table."
                continue
            words = _rule_words(allowed)
            operation["description"] = (operation.get("description", "") + f"\n\nWho may call it: {words}.").strip()
            if allowed != access.PUBLIC:
                operation["security"] = [{"bearerToken": []}]
            for status, text in COMMON_ERRORS.items():
                if status == "403" and allowed in (access.PUBLIC, access.SIGNED_IN):
                    continue
                if status in ("401", "403") and allowed == access.PUBLIC:
                    continue
                if status == "413" and method not in ("POST", "PUT"):
                    continue
                responses.setdefault(status, {"description": text, "content": _error_content()})
            if "<" in rule.rule:
                responses.setdefault("404", {"description": "No such item.", "content": _error_content()})
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                text = "The body was not sent as JSON (`Content-Type: application/json`)."
                responses.setdefault("415", {"description": text, "content": _error_content()})


def _error_content() -> dict:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _openapi_path(rule: str) -> str:
    """/api/v1/images/<int:image_id> -> /api/v1/images/{image_id}, as flask-smorest writes paths."""
    parts = []
    for part in rule.split("/"):
        if part.startswith("<") and part.endswith(">"):
            part = "{" + part[1:-1].split(":")[-1] + "}"
        parts.append(part)
    return "/".join(parts)
