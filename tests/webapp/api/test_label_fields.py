"""POST /api/v1/images/<id>/labels with findings, impression, comment and unsure, and
POST /api/v1/images/<id>/skip: stored when valid, a 400 that stores nothing when not, and in the contract."""

from tests.conftest import api_token
from webapp.extensions import db
from webapp.models import Claim, Label, Skip


def _served(client, headers) -> dict:
    return client.get("/api/v1/review/next", headers=headers).get_json()


def _labels() -> int:
    return db.session.execute(db.select(db.func.count(Label.id))).scalar_one()


def test_findings_impression_comment_and_unsure_are_stored_and_returned(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    served = _served(trained_client, headers)
    image_id = served["image"]["id"]
    body = {
        "unsure": True,
        "findings": "Patchy opacity in the right lower zone.",
        "impression": "Possible early pneumonia.",
        "comment": "Compare with a lateral if one is taken.",
    }
    response = trained_client.post(f"/api/v1/images/{image_id}/labels", headers=headers, json=body)
    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    assert {key: answer[key] for key in body} == body
    assert answer["label"] == served["prediction"]["predicted_class"]  # no class chosen: the model's call
    assert answer["agreed"] is None  # unsure neither confirms nor corrects
    stored = db.session.execute(db.select(Label).filter_by(image_id=image_id)).scalar_one()
    assert (stored.unsure, stored.findings, stored.comment) == (True, body["findings"], body["comment"])
    listed = trained_client.get(f"/api/v1/images/{image_id}", headers=headers).get_json()["labels"]
    assert listed[0]["impression"] == "Possible early pneumonia." and listed[0]["unsure"] is True


def test_a_decided_label_with_report_text(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    image_id = _served(trained_client, headers)["image"]["id"]
    response = trained_client.post(
        f"/api/v1/images/{image_id}/labels",
        headers=headers,
        json={"label": "pneumonia", "unsure": False, "impression": "Right lower lobe pneumonia."},
    )
    assert response.status_code == 201
    assert (response.get_json()["unsure"], response.get_json()["findings"]) == (False, None)


def test_wrong_types_too_long_and_missing_label_are_400_and_store_nothing(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    image_id = _served(trained_client, headers)["image"]["id"]
    cases = [
        ({"label": "normal", "unsure": "yes"}, "unsure"),
        ({"label": "normal", "unsure": 1}, "unsure"),
        ({"label": "normal", "findings": 42}, "findings"),
        ({"label": "normal", "comment": ["a", "list"]}, "comment"),
        ({"label": "normal", "impression": "x" * 4001}, "at most 4000 characters"),
        ({"label": "normal", "findings": "y" * 4001}, "at most 4000 characters"),
        ({"unsure": False}, "label"),
        ({}, "label"),
    ]
    for body, named in cases:
        response = trained_client.post(f"/api/v1/images/{image_id}/labels", headers=headers, json=body)
        assert response.status_code == 400, body
        assert named in response.get_json()["error"], response.get_json()
    assert _labels() == 0
    assert db.session.get(Claim, image_id).state == "held"


def test_skip_over_the_api(trained_app, trained_client):
    doctor, doctor2 = api_token(trained_app, "doctor"), api_token(trained_app, "doctor2")
    skipped = _served(trained_client, doctor)["image"]["id"]
    response = trained_client.post(f"/api/v1/images/{skipped}/skip", headers=doctor)
    assert response.status_code == 200
    assert response.get_json() == {"image_id": skipped, "skips": 1, "your_skips": 1}
    after = _served(trained_client, doctor)
    assert after["image"]["id"] != skipped and after["your_skips"] == 1
    for_other = _served(trained_client, doctor2)
    assert for_other["image"]["id"] == skipped and for_other["skips"] == 1  # the queue says it was passed on
    again = trained_client.post(f"/api/v1/images/{skipped}/skip", headers=doctor)  # a retry counts once
    assert again.status_code == 200 and again.get_json()["skips"] == 1


def test_only_the_served_image_can_be_skipped(trained_app, trained_client):
    doctor, doctor2 = api_token(trained_app, "doctor"), api_token(trained_app, "doctor2")
    held_by_other = _served(trained_client, doctor2)["image"]["id"]
    refused = trained_client.post(f"/api/v1/images/{held_by_other}/skip", headers=doctor)
    assert refused.status_code == 409 and "not served to you" in refused.get_json()["error"]
    engineer = trained_client.post(f"/api/v1/images/{held_by_other}/skip", headers=api_token(trained_app, "engineer"))
    assert engineer.status_code == 403
    assert db.session.execute(db.select(db.func.count(Skip.id))).scalar_one() == 0


def test_the_contract_shows_the_new_fields_and_the_skip_route(app, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    request = spec["components"]["schemas"]["LabelRequest"]
    assert {"findings", "impression", "comment", "unsure"} <= set(request["properties"])
    assert request["properties"]["findings"]["maxLength"] == 4000
    assert request["properties"]["unsure"]["type"] == "boolean"
    assert "label" not in request.get("required", [])  # optional when unsure
    assert "post" in spec["paths"]["/api/v1/images/{image_id}/skip"]
