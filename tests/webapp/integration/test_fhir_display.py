"""FHIR text a person reads (coding display, CodeableConcept text, notes) names classes by their display
names and shows the model's doubt; the codes stay the identifiers."""

from __future__ import annotations

from tests.conftest import api_token
from tests.webapp.reports.study_helpers import upload_study
from webapp.extensions import db
from webapp.models import LabelClass, Prediction


def _resources(client, image_id: int, headers: dict) -> dict:
    response = client.get(f"/api/v1/images/{image_id}/fhir", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return {entry["resource"]["resourceType"]: entry["resource"] for entry in response.get_json()["entry"]}


def _near_tie(image_id: int, model_version: int) -> None:
    probabilities = {"pneumonia": 0.52, "normal": 0.48}  # within doubt.margin (0.10) of each other
    db.session.add(
        Prediction(
            image_id=image_id,
            model_version=model_version,
            probabilities=probabilities,
            predicted_class="pneumonia",
            confidence=0.52,
        )
    )
    db.session.commit()


def test_fhir_display_text_uses_display_names_and_says_uncertain(trained_app, trained_client):
    db.session.get(LabelClass, "pneumonia").display = "Community-acquired pneumonia"
    db.session.commit()
    headers = api_token(trained_app, "doctor")
    uploaded = upload_study(trained_client, headers, seed=29)
    image_id = uploaded["image_id"]
    _near_tie(image_id, uploaded["prediction"]["model_version"])

    observation = _resources(trained_client, image_id, headers)["Observation"]
    value = observation["valueCodeableConcept"]
    assert value["coding"][0]["code"] == "pneumonia"  # the identifier stays the code
    assert value["coding"][0]["display"] == value["text"] == "Community-acquired pneumonia"
    texts = {
        component["code"]["coding"][0]["code"]: component["code"]["text"] for component in observation["component"]
    }
    assert texts == {"pneumonia": "probability of Community-acquired pneumonia", "normal": "probability of Normal"}
    notes = [note["text"] for note in observation["note"]]
    assert "Uncertain between Community-acquired pneumonia and Normal." in notes

    trained_client.post(f"/api/v1/images/{image_id}/labels", headers=headers, json={"label": "normal"})
    report = _resources(trained_client, image_id, headers)["DiagnosticReport"]
    assert report["status"] == "final"
    assert report["conclusionCode"] == [
        {"coding": [{"system": "urn:medal:class", "code": "normal", "display": "Normal"}], "text": "Normal"}
    ]


def test_a_clear_call_has_no_doubt_note(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    uploaded = upload_study(trained_client, headers, seed=31)
    image_id = uploaded["image_id"]
    db.session.add(
        Prediction(
            image_id=image_id,
            model_version=uploaded["prediction"]["model_version"],
            probabilities={"pneumonia": 0.9, "normal": 0.1},
            predicted_class="pneumonia",
            confidence=0.9,
        )
    )
    db.session.commit()
    observation = _resources(trained_client, image_id, headers)["Observation"]
    assert observation["valueCodeableConcept"]["text"] == "Pneumonia"
    assert not any("Uncertain" in note["text"] for note in observation.get("note", []))
