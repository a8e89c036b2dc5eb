"""Prior studies: the same patient's other studies in the API (`priors`) and on the reading pages, and
the side-by-side view, which opens only two studies of one patient."""

from __future__ import annotations

import json

import jsonschema_rs

from tests import synthetic
from tests.conftest import api_token, login, user
from tests.webapp.priors.helpers import PATIENT_ID, studies, upload
from webapp.extensions import db
from webapp.models import GoldItem, Image, Label, LabelAmendment
from webapp.upload.ingest import ImageMeta, ingest


def _image(client, headers, image_id: int) -> dict:
    response = client.get(f"/api/v1/images/{image_id}", headers=headers)
    assert response.status_code == 200, response.data
    return response.get_json()


def _validated(client, body: dict) -> None:
    """The answer against the schema the served contract declares for GET /images/{image_id}."""
    spec = client.get("/api/v1/openapi.json").get_json()
    schema = spec["paths"]["/api/v1/images/{image_id}"]["get"]["responses"]["200"]["content"]["application/json"]
    validator = jsonschema_rs.Draft202012Validator({**schema["schema"], "components": spec["components"]})
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, errors


def _label(image_id: int, name: str, who: str = "doctor") -> None:
    db.session.add(Label(image_id=image_id, user_id=user(who).id, label=name, channel="api"))
    db.session.commit()


def test_the_api_lists_the_patients_other_studies_earlier_first_with_final_labels(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    first, second, third, current = studies(trained_client, headers, [501, 502, 503, 504])
    stranger = upload(trained_client, headers, 505, patient_id="MRN-SOMEONE-ELSE")
    unlinked = upload(trained_client, headers, 506, patient_id=None)
    _label(first["image_id"], "pneumonia")
    _label(second["image_id"], "normal")
    db.session.add(  # a doctor's amendment replaces the review label as the final label
        LabelAmendment(
            image_id=second["image_id"],
            label="pneumonia",
            previous_label="normal",
            reason="opacity seen on review",
            amended_by_id=user("doctor").id,
        )
    )
    db.session.commit()

    body = _image(trained_client, headers, current["image_id"])
    _validated(trained_client, body)
    assert [p["id"] for p in body["priors"]] == [first["image_id"], second["image_id"], third["image_id"]]
    assert [p["final_label"] for p in body["priors"]] == ["pneumonia", "pneumonia", None]
    assert [p["date"][:10] for p in body["priors"]] == ["2025-03-02", "2025-04-01", "2025-05-01"]
    assert body["priors"][0]["predicted_class"] == first["prediction"]["predicted_class"]
    assert body["priors_more"] == 0
    # the earliest study lists the later ones; neither identifier nor pseudonym is in any answer
    assert [p["id"] for p in _image(trained_client, headers, first["image_id"])["priors"]] == [
        second["image_id"],
        third["image_id"],
        current["image_id"],
    ]
    text = json.dumps(body)
    key = db.session.get(Image, current["image_id"]).patient_key
    assert PATIENT_ID not in text and key not in text
    assert _image(trained_client, headers, stranger["image_id"])["priors"] == []
    assert _image(trained_client, headers, unlinked["image_id"])["priors"] == []


def test_ten_priors_are_listed_and_the_older_ones_counted(app):
    key = "p-" + "a" * 32
    ids = []
    for seed in range(13):
        image, _ = ingest(
            synthetic.png_bytes(synthetic.radiograph(0, seed=600 + seed)),
            origin="import",
            meta=ImageMeta(patient_key=key),
            split="train",
            reference_label="normal",
        )
        db.session.flush()
        ids.append(image.id)
    db.session.commit()
    client = app.test_client()
    body = _image(client, api_token(app, "engineer"), ids[-1])
    assert [p["id"] for p in body["priors"]] == ids[2:12]  # the ten newest, earlier first
    assert body["priors_more"] == 2
    assert {p["final_label"] for p in body["priors"]} == {"normal"}  # the label they were imported with


def test_a_gold_image_awaiting_its_reads_is_no_prior(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    blind, current = studies(trained_client, headers, [511, 512])
    db.session.get(Image, blind["image_id"]).is_gold = True
    db.session.add(GoldItem(image_id=blind["image_id"], status="pending"))
    db.session.commit()
    assert _image(trained_client, headers, current["image_id"])["priors"] == []
    login(trained_client, "doctor")
    assert trained_client.get(f"/images/{current['image_id']}/compare/{blind['image_id']}").status_code == 404
    db.session.get(GoldItem, blind["image_id"]).status, db.session.get(GoldItem, blind["image_id"]).final_label = (
        "final",
        "normal",
    )
    db.session.commit()
    assert [p["final_label"] for p in _image(trained_client, headers, current["image_id"])["priors"]] == ["normal"]


def test_the_side_by_side_view_opens_two_studies_of_one_patient_only(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    prior, current = studies(trained_client, headers, [521, 522])
    stranger = upload(trained_client, headers, 523, patient_id="MRN-SOMEONE-ELSE")
    unlinked = upload(trained_client, headers, 524, patient_id=None)
    _label(prior["image_id"], "pneumonia")
    login(trained_client, "doctor")

    page = trained_client.get(f"/images/{current['image_id']}/compare/{prior['image_id']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"/images/{current['image_id']}.png" in html and f"/images/{prior['image_id']}.png" in html
    assert "Final label: <strong>Pneumonia</strong>" in html  # the display name, not the identifier
    assert PATIENT_ID not in html and db.session.get(Image, prior["image_id"]).patient_key not in html

    refused = [
        (current["image_id"], stranger["image_id"]),  # another patient's film
        (stranger["image_id"], current["image_id"]),
        (unlinked["image_id"], current["image_id"]),  # no patient link: no priors
        (current["image_id"], current["image_id"]),
        (current["image_id"], 999_999),  # missing: the same answer as another patient's
    ]
    for image_id, other_id in refused:
        response = trained_client.get(f"/images/{image_id}/compare/{other_id}")
        assert response.status_code == 404, (image_id, other_id)
        assert f"/images/{other_id}.png" not in response.get_data(as_text=True)


def test_the_side_by_side_view_needs_a_signed_in_user(trained_app, trained_client):
    prior, current = studies(trained_client, api_token(trained_app, "doctor"), [531, 532])
    response = trained_client.get(f"/images/{current['image_id']}/compare/{prior['image_id']}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_prediction_page_shows_the_priors_with_display_names(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    prior, current = studies(trained_client, headers, [541, 542])
    _label(prior["image_id"], "pneumonia")
    login(trained_client, "engineer")
    html = trained_client.get(f"/predictions/{current['prediction']['id']}").get_data(as_text=True)
    assert 'id="priors"' in html and "2025-03-02" in html
    assert f"/images/{current['image_id']}/compare/{prior['image_id']}" in html
    assert "<strong>Pneumonia</strong>" in html
    assert PATIENT_ID not in html and db.session.get(Image, current["image_id"]).patient_key not in html
