"""Gold reads stay blind: outside the gold-read flow a gold image awaiting its reads does not
exist (404, like a missing image), and only label_roles may read; every final label is audited."""

from __future__ import annotations

import io

import pytest

from tests.conftest import api_token, login, seed_pool, user
from tests.synthetic import png_bytes, radiograph
from webapp.extensions import db
from webapp.gold import goldset
from webapp.inference import predictions
from webapp.models import AuditEvent, GoldItem, Image, Label

CLASSES = ["normal", "pneumonia"]


@pytest.fixture
def gold_image(tiny):
    image_id = seed_pool(1, seed=61)[0]
    prediction = predictions.predict(db.session.get(Image, image_id))  # an upload predicts at once
    db.session.commit()
    assert goldset.mark([image_id], user("engineer")).added == [image_id]
    return image_id, prediction.id


@pytest.mark.parametrize("name", ["doctor", "engineer", "admin"])
def test_the_image_api_does_not_show_a_pending_gold_image(app, client, gold_image, name):
    image_id, _ = gold_image
    goldset.record_read(user("doctor2"), image_id, "normal", CLASSES)  # another doctor's read exists
    response = client.get(f"/api/v1/images/{image_id}", headers=api_token(app, name))
    assert response.status_code == 404
    assert response.get_json()["error"] == f"No image with id {image_id}."  # the same as a missing image
    assert "is_gold" not in response.get_data(as_text=True) and "normal" not in response.get_data(as_text=True)


def test_the_label_api_refuses_a_gold_image_and_the_gold_read_is_not_used_up(app, client, gold_image):
    image_id, prediction_id = gold_image
    response = client.post(
        f"/api/v1/images/{image_id}/labels",
        headers=api_token(app, "doctor"),
        json={"label": "normal", "prediction_id": prediction_id},
    )
    assert response.status_code == 404
    assert db.session.execute(db.select(db.func.count(Label.id))).scalar_one() == 0
    assert goldset.next_read(user("doctor")).image_id == image_id
    goldset.record_read(user("doctor"), image_id, "pneumonia", CLASSES)


def test_the_prediction_page_of_a_pending_gold_image_is_404(client, gold_image):
    _, prediction_id = gold_image
    login(client, "doctor")
    assert client.get(f"/predictions/{prediction_id}").status_code == 404


def test_after_adjudication_the_image_is_shown_and_still_takes_no_review_label(app, client, gold_image):
    image_id, _ = gold_image
    goldset.record_read(user("doctor"), image_id, "normal", CLASSES)
    goldset.record_read(user("doctor2"), image_id, "pneumonia", CLASSES)
    goldset.adjudicate(user("admin"), image_id, "pneumonia", CLASSES)
    headers = api_token(app, "doctor")
    shown = client.get(f"/api/v1/images/{image_id}", headers=headers).get_json()
    assert shown["is_gold"] is True and len(shown["labels"]) == 2
    refused = client.post(f"/api/v1/images/{image_id}/labels", headers=headers, json={"label": "normal"})
    assert refused.status_code == 409


def test_gold_reads_come_from_label_roles_only(gold_image):
    image_id, _ = gold_image
    for name in ("admin", "engineer"):
        with pytest.raises(goldset.GoldError) as caught:
            goldset.record_read(user(name), image_id, "normal", CLASSES)
        assert caught.value.status == 403
    assert db.session.execute(db.select(db.func.count(Label.id))).scalar_one() == 0


def test_reads_and_final_labels_are_audited(gold_image):
    image_id, _ = gold_image
    goldset.record_read(user("doctor"), image_id, "normal", CLASSES)
    goldset.record_read(user("doctor2"), image_id, "normal", CLASSES)
    assert db.session.get(GoldItem, image_id).status == "final"
    events = db.session.execute(db.select(AuditEvent).filter_by(kind="label").order_by(AuditEvent.id)).scalars()
    found = [(event.actor_name, event.details.get("channel"), event.details.get("gold")) for event in events]
    assert found == [("doctor", "gold", None), ("doctor2", "gold", None), ("doctor2", None, "agreeing reads")]


def test_heat_map_and_chat_of_a_pending_gold_image_are_404(app, client, gold_image):
    _, prediction_id = gold_image
    login(client, "doctor")
    assert client.get(f"/predictions/{prediction_id}/heatmap.png").status_code == 404
    assert client.get(f"/predictions/{prediction_id}/chat").status_code == 404
    asked = client.post(
        f"/api/v1/predictions/{prediction_id}/chat", headers=api_token(app, "doctor"), json={"message": "why?"}
    )
    assert asked.status_code == 404
    assert "probab" not in asked.get_data(as_text=True)


def test_uploading_a_pending_gold_image_again_withholds_its_prediction(app, client, tiny):
    headers = api_token(app, "doctor")
    data = png_bytes(radiograph(1, seed=62))
    first = client.post("/api/v1/images", headers=headers, data={"file": (io.BytesIO(data), "a.png")})
    assert first.status_code == 201
    goldset.mark([first.get_json()["image_id"]], user("engineer"))
    again = client.post("/api/v1/images", headers=headers, data={"file": (io.BytesIO(data), "a.png")})
    assert again.status_code == 409
    assert "prediction" not in again.get_json() and "withheld" in again.get_json()["error"]
