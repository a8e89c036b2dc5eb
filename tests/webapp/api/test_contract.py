"""The OpenAPI contract: generated from the routes, complete, with the roles of the access table, and
honoured by the running app (schemathesis fuzzes it over HTTP: no server errors, no answer outside its
schema or its documented statuses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import schemathesis

from tests.browser import serving
from tests.conftest import api_token
from tests.synthetic import png_bytes, radiograph
from webapp.api.contract import _openapi_path
from webapp.auth.access import ACCESS, PUBLIC

ARTEFACTS = Path(__file__).resolve().parents[3] / "test-artefacts" / "schemathesis"


def _spec(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def test_the_contract_is_openapi_3_1_and_loads_in_schemathesis(app, client):
    spec = _spec(client)
    assert spec["openapi"] == "3.1.0"
    schema = schemathesis.openapi.from_dict(spec)
    operations = [result.ok() for result in schema.get_all_operations()]  # raises on an invalid operation
    assert len(operations) == sum(len(item) for item in spec["paths"].values() if isinstance(item, dict)) - sum(
        1 for item in spec["paths"].values() if "parameters" in item
    )


def test_every_api_route_is_in_the_contract_with_its_roles(app, client):
    spec = _spec(client)
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        path = _openapi_path(rule.rule)
        assert path in spec["paths"], f"{rule.rule} is missing from the contract"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = spec["paths"][path][method.lower()]
            assert operation["operationId"] == rule.endpoint.removeprefix("api.")
            assert "Who may call it:" in operation["description"], rule.endpoint
            if ACCESS[rule.endpoint] != PUBLIC:
                assert operation["security"] == [{"bearerToken": []}]
                assert "401" in operation["responses"]
            assert any(status.startswith("2") for status in operation["responses"]), rule.endpoint


def test_engineer_operations_say_so_and_document_403(client):
    operation = _spec(client)["paths"]["/api/v1/models/{version}/approve"]["post"]
    assert "engineer or admin" in operation["description"]
    assert "403" in operation["responses"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DecisionRequest"
    }


def test_the_upload_form_documents_the_clinical_fields_with_their_ranges(client):
    spec = _spec(client)
    body = spec["paths"]["/api/v1/images"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    upload = spec["components"]["schemas"][body["$ref"].split("/")[-1]]
    assert upload["required"] == ["file"]
    assert upload["properties"]["file"]["format"] == "binary"
    assert upload["properties"]["temperature_c"]["minimum"] == 30.0
    assert upload["properties"]["temperature_c"]["maximum"] == 45.0


def test_requests_are_validated_by_the_same_schema(app, client):
    """An out-of-range clinical value in the upload form is refused by the schema the contract shows."""
    from webapp.extensions import db
    from webapp.models import Image

    headers = api_token(app, "doctor")
    response = client.post(
        "/api/v1/images",
        headers=headers,
        data={"file": (png_bytes(radiograph(0, size=64, seed=1)), "x.png"), "temperature_c": "60"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    body = response.get_json()
    assert "Temperature" in body["error"] and "temperature_c" in body["errors"]["form_and_files"]
    assert db.session.execute(db.select(Image)).first() is None


def test_a_label_body_of_the_wrong_type_names_the_field(app, client):
    headers = api_token(app, "doctor")
    response = client.post("/api/v1/images/1/labels", headers=headers, json={"label": "normal", "time_spent_ms": "x"})
    assert response.status_code == 400
    assert response.get_json()["error"] == '"time_spent_ms" must be an integer.'


def test_the_docs_page_lists_every_operation_without_scripts(client):
    spec = _spec(client)
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for path, item in spec["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "delete"):
                assert f"{method.upper()} {path}" in html
    assert '<script src="http' not in html


@pytest.fixture
def live_api(trained_app):
    with serving(trained_app) as url:
        yield url


@pytest.mark.slow
@pytest.mark.parametrize("role", ["doctor", "engineer"])
def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_contract(trained_app, live_api, role):
    """Every operation fuzzed over HTTP with a doctor's and an engineer's token (each sees the other's
    operations answer 403, which the contract documents)."""
    token = api_token(trained_app, role)["Authorization"]
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{live_api}/api/v1/openapi.json",
        "--header",
        f"Authorization:{token}",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--max-examples",
        "25",
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "1",
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--no-color",
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-dir",
        str(ARTEFACTS / role),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env={**os.environ, "NO_COLOR": "1"})
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
