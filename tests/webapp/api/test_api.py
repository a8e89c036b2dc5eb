"""The REST API under /api/v1: tokens, images, predictions, the queue and labels."""

import io
import re

import pytest

from tests import synthetic
from tests.conftest import api_token
from webapp.extensions import db
from webapp.models import Image, Label


def _upload(client, headers, data: bytes, **form):
    return client.post(
        "/api/v1/images",
        headers=headers,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(data), "x.png"), **form},
    )


def test_every_route_needs_a_valid_token(trained_client):
    for method, path in [
        ("get", "/api/v1/models"),
        ("get", "/api/v1/review/next"),
        ("get", "/api/v1/images/1"),
        ("post", "/api/v1/images"),
        ("post", "/api/v1/images/1/labels"),
    ]:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            response = getattr(trained_client, method)(path, headers=headers)
            assert response.status_code == 401, path
            assert response.get_json()["error"]


def test_session_cookie_is_not_enough_for_the_api(trained_client):
    from tests.conftest import login

    login(trained_client, "doctor")
    assert trained_client.get("/api/v1/models").status_code == 401


def test_upload_returns_image_and_prediction_ids(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    response = _upload(
        trained_client,
        headers,
        synthetic.png_bytes(synthetic.radiograph(1, seed=3)),
        site="ward-3",
        patient_age="67",
        patient_sex="f",
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["prediction"]["id"] and body["prediction"]["model_version"] == 1
    image = trained_client.get(f"/api/v1/images/{body['image_id']}", headers=headers).get_json()
    assert (image["site"], image["patient_age"], image["patient_sex"]) == ("ward-3", 67, "F")
    assert image["prediction"]["id"] == body["prediction"]["id"]


def test_bad_uploads_are_json_4xx_and_store_nothing(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    before = db.session.execute(db.select(db.func.count(Image.id))).scalar_one()
    good = synthetic.png_bytes(synthetic.radiograph(0, seed=8))
    cases = [
        (b"plain text", {}, 415),
        (b"", {}, 400),
        (good, {"patient_age": "old"}, 400),
        (good, {"patient_sex": "X"}, 400),
        (good, {"patient_age": "250"}, 400),
    ]
    for data, form, status in cases:
        response = _upload(trained_client, headers, data, **form)
        assert response.status_code == status, (form, response.get_json())
        assert response.is_json and response.get_json()["error"]
    response = trained_client.post("/api/v1/images", headers=headers, data={})
    assert response.status_code == 400 and "file" in response.get_json()["error"]
    assert db.session.execute(db.select(db.func.count(Image.id))).scalar_one() == before


def test_review_next_then_label(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    served = trained_client.get("/api/v1/review/next", headers=headers).get_json()
    image_id, prediction = served["image"]["id"], served["prediction"]
    response = trained_client.post(
        f"/api/v1/images/{image_id}/labels",
        headers=headers,
        json={"label": prediction["predicted_class"], "prediction_id": prediction["id"]},
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["user"] == "doctor" and body["agreed"] is True and body["prediction_id"] == prediction["id"]
    again = trained_client.post(f"/api/v1/images/{image_id}/labels", headers=headers, json={"label": "normal"})
    assert again.status_code == 409
    assert db.session.execute(db.select(db.func.count(Label.id))).scalar_one() == 1


def test_label_errors(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    image_id = trained_client.get("/api/v1/review/next", headers=headers).get_json()["image"]["id"]
    cases = [
        (image_id, {"label": "lupus"}, 400),
        (999_999, {"label": "normal"}, 404),
        (image_id, {"lab": "normal"}, 400),
        (image_id, "normal", 400),
        (image_id, {"label": "normal", "prediction_id": "x"}, 400),
    ]
    for target, body, status in cases:
        response = trained_client.post(f"/api/v1/images/{target}/labels", headers=headers, json=body)
        assert response.status_code == status, body
        assert response.get_json()["error"]
    assert db.session.execute(db.select(db.func.count(Label.id))).scalar_one() == 0


def test_missing_image_is_404(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    assert trained_client.get("/api/v1/images/424242", headers=headers).status_code == 404


def test_models_lists_the_champion(trained_app, trained_client):
    body = trained_client.get("/api/v1/models", headers=api_token(trained_app, "engineer")).get_json()
    assert body["aliases"]["champion"] == 1
    assert body["versions"][0]["version"] == 1 and "champion" in body["versions"][0]["aliases"]


def test_a_revoked_token_is_refused(app):
    from webapp.models import ApiToken

    headers = api_token(app, "doctor")
    client = app.test_client()
    assert client.get("/api/v1/review/next", headers=headers).status_code != 401
    db.session.execute(db.update(ApiToken).values(revoked=True))
    db.session.commit()
    response = client.get("/api/v1/review/next", headers=headers)
    assert response.status_code == 401 and "bearer token" in response.get_json()["error"]


@pytest.mark.parametrize(
    "body, words",
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"label": 3}', '"label" must be a string'),
        (b'{"label": "normal", "prediction_id": "7"}', '"prediction_id" must be an integer'),
        (b'{"label": "normal", "prediction_id": true}', '"prediction_id" must be an integer'),
        (b'{"a":' * 60 + b"1" + b"}" * 60, "nested"),
        (b"[" * 50000 + b"]" * 50000, "JSON"),
    ],
)
def test_bad_json_bodies_get_a_400_with_a_message(trained_app, body, words):
    client = trained_app.test_client()
    response = client.post(
        "/api/v1/images/1/labels", data=body, content_type="application/json", headers=api_token(trained_app, "doctor")
    )
    assert response.status_code == 400 and words in response.get_json()["error"]


def _stored(home) -> tuple[int, int]:
    files = [p for p in (home / "images").rglob("*") if p.is_file()] if (home / "images").exists() else []
    return db.session.execute(db.select(db.func.count(Image.id))).scalar_one(), len(files)


def test_several_files_in_one_api_upload_are_a_400_and_none_is_stored(app, tiny, home):
    """Issue 19: the first file was stored and answered, the others dropped without a word."""
    before = _stored(home)
    images = [synthetic.png_bytes(synthetic.radiograph(label, seed=90 + label)) for label in (0, 1)]
    response = app.test_client().post(
        "/api/v1/images",
        headers=api_token(app, "doctor"),
        content_type="multipart/form-data",
        data={"file": [(io.BytesIO(data), f"{i}.png") for i, data in enumerate(images)]},
    )
    assert response.status_code == 400
    assert response.get_json()["error"].startswith("Send one image per request (this one had 2 in 'file')")
    assert _stored(home) == before


def test_every_json_operation_refuses_a_body_of_another_type_with_a_415(app):
    """A JSON body sent as text/plain was read as no body at all: PUT .../clinical answered 200 and
    changed nothing. Every operation whose contract takes JSON answers 415 before doing anything."""
    client = app.test_client()
    spec = client.get("/api/v1/openapi.json").get_json()
    operations = [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path), operation)  # ids need not exist: the body is refused first
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
        if isinstance(operation, dict) and "application/json" in operation.get("requestBody", {}).get("content", {})
    ]
    assert len(operations) >= 6, operations  # labels, clinical, chat, approve, reject, rollback ...
    tokens = [api_token(app, name) for name in ("doctor", "engineer", "admin")]
    wrong = []
    for method, path, operation in operations:
        assert "415" in operation["responses"], (method, path)  # the contract says so too
        answers = [
            client.open(path, method=method, headers={**token, "Content-Type": "text/plain"}, data=b"x")
            for token in tokens
        ]
        allowed = [answer for answer in answers if answer.status_code != 403]
        if not allowed or allowed[0].status_code != 415 or "application/json" not in allowed[0].get_json()["error"]:
            wrong.append(f"{method} {path}: {[a.status_code for a in answers]}")
    assert not wrong, wrong
