"""`uncertain_between` on a prediction: the two classes (identifiers) the model hesitates between under
config.yaml `doubt`, or null for a clear call; declared in the contract and honoured by the answer."""

from __future__ import annotations

import json

import jsonschema_rs
import pytest

from tests.conftest import api_token, change_settings
from tests.webapp.reports.study_helpers import upload_study
from webapp.extensions import db
from webapp.models import Prediction


def _predicted(image_id: int, version: int, probabilities: dict[str, float]) -> None:
    top = max(probabilities, key=probabilities.__getitem__)
    db.session.add(
        Prediction(
            image_id=image_id,
            model_version=version,
            probabilities=probabilities,
            predicted_class=top,
            confidence=probabilities[top],
        )
    )
    db.session.commit()


def _image_checked_against_the_contract(client, image_id: int, headers: dict) -> dict:
    spec = client.get("/api/v1/openapi.json").get_json()
    schema = spec["paths"]["/api/v1/images/{image_id}"]["get"]["responses"]["200"]["content"]["application/json"]
    response = client.get(f"/api/v1/images/{image_id}", headers=headers)
    assert response.status_code == 200, response.data
    body = json.loads(response.get_data(as_text=True))
    validator = jsonschema_rs.Draft202012Validator({**schema["schema"], "components": spec["components"]})
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, errors
    return body


@pytest.mark.parametrize(
    ("probabilities", "between"),
    [
        ({"normal": 0.47, "pneumonia": 0.53}, ["pneumonia", "normal"]),  # within the 0.10 margin
        ({"normal": 0.15, "pneumonia": 0.85}, None),  # a clear call
    ],
)
def test_get_image_says_which_two_classes_the_model_hesitates_between(
    trained_app, trained_client, probabilities, between
):
    headers = api_token(trained_app, "doctor")
    uploaded = upload_study(trained_client, headers, seed=37)
    _predicted(uploaded["image_id"], uploaded["prediction"]["model_version"], probabilities)
    body = _image_checked_against_the_contract(trained_client, uploaded["image_id"], headers)
    assert body["prediction"]["uncertain_between"] == between
    assert body["prediction"]["predicted_class"] == "pneumonia"  # identifiers, never display names


def test_the_margin_comes_from_config(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    uploaded = upload_study(trained_client, headers, seed=39)
    _predicted(uploaded["image_id"], uploaded["prediction"]["model_version"], {"normal": 0.3, "pneumonia": 0.7})
    change_settings(trained_app, {"doubt": {"margin": 0.5}})
    body = trained_client.get(f"/api/v1/images/{uploaded['image_id']}", headers=headers).get_json()
    assert body["prediction"]["uncertain_between"] == ["pneumonia", "normal"]


def test_the_contract_documents_uncertain_between(client):
    declared = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["Prediction"]
    assert "uncertain_between" in declared["required"]
    assert "hesitates" in declared["properties"]["uncertain_between"]["description"]
