"""Re-uploads: bytes already stored are the study stored before, and the answer says so ("already",
the study's id and link). Fields typed with it fill the study's gaps; where they differ the study's
values are kept and named. No second row or file is stored."""

from __future__ import annotations

import io
import json

import jsonschema_rs

from tests import synthetic
from tests.conftest import api_token, login
from webapp.extensions import db
from webapp.models import ClinicalRecord, GoldItem, Image, Prediction

PATIENT_ID = "MRN-REUP-3318"


def _api_upload(client, headers, data: bytes, **form):
    return client.post(
        "/api/v1/images",
        headers=headers,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(data), "x.png"), **form},
    )


def _page_upload(client, data: bytes, name: str = "x.png", **form) -> dict:
    response = client.post(
        "/upload", data={"file": (io.BytesIO(data), name), **form}, content_type="multipart/form-data"
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["results"][0]


def _stored(home) -> tuple[int, int]:
    files = sum(1 for path in (home / "images").rglob("*") if path.is_file())
    return db.session.execute(db.select(db.func.count(Image.id))).scalar_one(), files


def _validated(client, status: str, body: dict) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    content = spec["paths"]["/api/v1/images"]["post"]["responses"][status]["content"]["application/json"]
    validator = jsonschema_rs.Draft202012Validator({**content["schema"], "components": spec["components"]})
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, errors


def test_an_api_reupload_says_already_adds_missing_fields_and_keeps_differing_ones(trained_app, trained_client, home):
    headers = api_token(trained_app, "doctor")
    data = synthetic.png_bytes(synthetic.radiograph(1, seed=811))
    first = _api_upload(trained_client, headers, data, site="north", patient_age="7", crp_mg_l="85")
    assert first.status_code == 201 and first.get_json()["already"] is False
    _validated(trained_client, "201", first.get_json())
    image_id = first.get_json()["image_id"]
    before = _stored(home)

    again = _api_upload(
        trained_client,
        headers,
        data,
        site="south",
        patient_age="7",
        patient_sex="f",
        patient_id=PATIENT_ID,
        temperature_c="38.9",
        crp_mg_l="90",
    )
    assert again.status_code == 200  # as before for an image that exists
    body = again.get_json()
    _validated(trained_client, "200", body)
    assert body["already"] is True and body["created"] is False and body["image_id"] == image_id
    assert body["message"] == (
        f"This film is already in medal as study #{image_id}. Added patient sex F, the patient id, "
        "temperature 38.9 °C. Kept site 'north' (you typed 'south'), CRP 85 mg/L (you typed 90 mg/L)."
    )
    assert body["image_url"] == f"/api/v1/images/{image_id}"
    assert body["added"] == {"patient_sex": "F", "patient_id": None, "temperature_c": 38.9}
    assert body["kept"] == [
        {"field": "site", "kept": "north", "typed": "south"},
        {"field": "crp_mg_l", "kept": 85.0, "typed": 90.0},
    ]
    assert PATIENT_ID not in json.dumps(body)

    assert _stored(home) == before  # no second row, no second file
    image = db.session.get(Image, image_id)
    assert (image.site, image.patient_age, image.patient_sex) == ("north", 7, "F")
    assert image.patient_key  # the patient link was added: its studies now list each other
    record = db.session.get(ClinicalRecord, image_id)
    assert (record.crp_mg_l, record.temperature_c) == (85.0, 38.9)
    assert trained_client.get(body["image_url"], headers=headers).get_json()["clinical"] == {
        "crp_mg_l": 85.0,
        "temperature_c": 38.9,
    }


def test_a_reupload_with_another_patient_id_keeps_the_link_and_never_repeats_the_id(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    data = synthetic.png_bytes(synthetic.radiograph(0, seed=812))
    image_id = _api_upload(trained_client, headers, data, patient_id=PATIENT_ID).get_json()["image_id"]
    key = db.session.get(Image, image_id).patient_key
    body = _api_upload(trained_client, headers, data, patient_id="MRN-OTHER-0001").get_json()
    assert "Kept the patient id (you typed a different one)." in body["message"]
    assert body["kept"] == [{"field": "patient_id", "kept": None, "typed": None}]
    assert "MRN" not in json.dumps(body) and key not in json.dumps(body)
    assert db.session.get(Image, image_id).patient_key == key


def test_a_reupload_with_nothing_new_says_already_and_changes_nothing(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    data = synthetic.png_bytes(synthetic.radiograph(0, seed=813))
    image_id = _api_upload(trained_client, headers, data, site="north").get_json()["image_id"]
    body = _api_upload(trained_client, headers, data, site="north").get_json()
    assert body["message"] == f"This film is already in medal as study #{image_id}."
    assert (body["added"], body["kept"]) == ({}, [])


def test_the_upload_page_says_already_with_a_link_and_fills_the_default_site(trained_client, csrf_off, home):
    login(trained_client, "doctor")
    data = synthetic.png_bytes(synthetic.radiograph(1, seed=814))
    first = _page_upload(trained_client, data, patient_age="40")
    assert first["already"] is False and "message" not in first
    assert db.session.get(Image, first["image_id"]).site == "local"  # images.default_site: no site was typed
    before = _stored(home)
    again = _page_upload(trained_client, data, site="east", patient_age="41")
    assert again["ok"] and again["already"] is True and again["image_id"] == first["image_id"]
    assert again["message"].startswith(f"This film is already in medal as study #{first['image_id']}.")
    assert again["details"] == ["Added site 'east'.", "Kept patient age 40 (you typed 41)."]
    assert again["study_url"] == f"/predictions/{again['prediction']['id']}"
    assert trained_client.get(again["study_url"]).status_code == 200
    assert _stored(home) == before
    assert db.session.get(Image, first["image_id"]).site == "east"


def test_dicom_reuploads_follow_the_file_bytes(trained_client, csrf_off, home):
    """The dedup key is the sha256 of the file: the same DICOM file again is "already"; the same pixels
    in another file (new UIDs, another header) are another study."""
    login(trained_client, "doctor")
    pixels = synthetic.radiograph(1, seed=815)
    data = synthetic.dicom_bytes(pixels)
    first = _page_upload(trained_client, data, "a.dcm")
    image = db.session.get(Image, first["image_id"])
    assert image.source_format == "dicom" and image.patient_age is None  # the header holds no age
    again = _page_upload(trained_client, data, "a.dcm", patient_age="63", site="west")
    assert again["already"] is True and again["image_id"] == first["image_id"]
    assert again["details"] == ["Added site 'west', patient age 63."]
    assert (image.patient_age, image.site) == (63, "west")
    other_file = _page_upload(trained_client, synthetic.dicom_bytes(pixels), "b.dcm")
    assert other_file["already"] is False and other_file["image_id"] != first["image_id"]


def test_a_reupload_of_a_gold_image_awaiting_reads_is_refused_and_changes_nothing(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    data = synthetic.png_bytes(synthetic.radiograph(0, seed=816))
    image_id = _api_upload(trained_client, headers, data).get_json()["image_id"]
    db.session.get(Image, image_id).is_gold = True
    db.session.add(GoldItem(image_id=image_id, status="pending"))
    db.session.commit()
    predictions = db.session.execute(db.select(db.func.count(Prediction.id))).scalar_one()
    response = _api_upload(trained_client, headers, data, site="north", patient_age="50")
    assert response.status_code == 409 and "already" in response.get_json()["error"]
    image = db.session.get(Image, image_id)
    assert (image.site, image.patient_age) == ("local", None)
    assert db.session.execute(db.select(db.func.count(Prediction.id))).scalar_one() == predictions
