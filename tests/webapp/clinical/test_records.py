"""Clinical data with each study: validation with units and ranges, and the upload, API and CSV round trips."""

import io

import pytest

from tests import synthetic
from tests.conftest import api_token, login
from webapp.clinical import records
from webapp.extensions import db
from webapp.models import ClinicalRecord, Image

GOOD = {
    "symptoms": "cough, fever",
    "symptom_days": "4",
    "temperature_c": "38.9",
    "spo2_pct": "91",
    "respiratory_rate": "28",
    "wbc": "14.2",
    "crp_mg_l": "85",
    "history": "asthma since childhood",
}
# one out-of-range or malformed value per field, with the words its message must hold
BAD = [
    ("symptoms", "x" * 301, "300 characters"),
    ("symptom_days", "366", "0 to 365 days"),
    ("symptom_days", "three", "0 to 365 days"),
    ("temperature_c", "29.9", "30 to 45 °C"),
    ("temperature_c", "hot", "30 to 45 °C"),
    ("temperature_c", "nan", "30 to 45 °C"),
    ("spo2_pct", "101", "50 to 100 %"),
    ("spo2_pct", "91.5", "whole number"),
    ("respiratory_rate", "4", "5 to 80 /min"),
    ("wbc", "0", "0.1 to 100 10^9/L"),
    ("crp_mg_l", "-1", "0 to 500 mg/L"),
    ("crp_mg_l", "501", "0 to 500 mg/L"),
    ("history", "y" * 2001, "2000 characters"),
]


def _count(model) -> int:
    return db.session.execute(db.select(db.func.count()).select_from(model)).scalar_one()


def test_describe_gives_lines_with_units():
    lines = records.describe(records.parse(GOOD))
    assert "Temperature 38.9 °C" in lines and "SpO2 91 %" in lines and "CRP 85 mg/L" in lines
    assert "Symptoms: cough, fever" in lines and "Symptoms for 4 days" in lines and "WBC 14.2 10^9/L" in lines


@pytest.mark.parametrize(("name", "value", "words"), BAD)
def test_each_bad_value_names_its_field_unit_and_range(name, value, words):
    with pytest.raises(records.ClinicalError) as caught:
        records.parse({name: value})
    assert caught.value.status == 400 and name in str(caught.value) and words in str(caught.value)


def test_unknown_fields_and_booleans_are_refused():
    for body in ({"crp": 5}, {"wbc": True}):
        with pytest.raises(records.ClinicalError):
            records.parse(body)


def _upload_page(client, fields: dict, seed: int):
    data = synthetic.png_bytes(synthetic.radiograph(1, seed=seed))
    return client.post(
        "/upload", data={"file": (io.BytesIO(data), "x.png"), **fields}, content_type="multipart/form-data"
    )


def test_upload_page_stores_clinical_data_with_the_image(trained_client, csrf_off):
    login(trained_client, "doctor")
    response = _upload_page(trained_client, GOOD, seed=301)
    assert response.status_code == 200, response.get_json()
    image_id = response.get_json()["results"][0]["image_id"]
    stored = records.for_image(image_id)
    assert stored["temperature_c"] == 38.9 and stored["spo2_pct"] == 91 and stored["history"] == GOOD["history"]
    assert db.session.get(ClinicalRecord, image_id).entered_by.username == "doctor"


@pytest.mark.parametrize(("name", "value", "words"), BAD[:4])
def test_a_bad_clinical_field_stores_no_image_and_no_file(trained_client, csrf_off, home, name, value, words):
    login(trained_client, "doctor")
    images, files = _count(Image), sorted((home / "images").rglob("*"))
    response = _upload_page(trained_client, {**GOOD, name: value}, seed=302)
    assert response.status_code == 400 and words in response.get_json()["error"]
    assert _count(Image) == images and _count(ClinicalRecord) == 0
    assert sorted((home / "images").rglob("*")) == files


def test_api_upload_get_and_put_round_trip(trained_app):
    client = trained_app.test_client()
    doctor, engineer = api_token(trained_app, "doctor"), api_token(trained_app, "engineer")
    data = synthetic.png_bytes(synthetic.radiograph(0, seed=303))
    response = client.post(
        "/api/v1/images",
        headers=doctor,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(data), "x.png"), "crp_mg_l": "120", "spo2_pct": "88"},
    )
    assert response.status_code == 201
    image_id = response.get_json()["image_id"]
    assert client.get(f"/api/v1/images/{image_id}", headers=doctor).get_json()["clinical"] == {
        "crp_mg_l": 120.0,
        "spo2_pct": 88,
    }
    # later: a doctor adds and changes fields; null clears one; a bad value changes nothing
    put = client.put(f"/api/v1/images/{image_id}/clinical", headers=doctor, json={"wbc": 3.5, "spo2_pct": None})
    assert put.status_code == 200 and put.get_json()["clinical"] == {"crp_mg_l": 120.0, "wbc": 3.5}
    bad = client.put(f"/api/v1/images/{image_id}/clinical", headers=doctor, json={"wbc": 300})
    assert bad.status_code == 400 and "0.1 to 100 10^9/L" in bad.get_json()["error"]
    assert records.for_image(image_id) == {"crp_mg_l": 120.0, "wbc": 3.5}
    assert client.put(f"/api/v1/images/{image_id}/clinical", headers=engineer, json={"wbc": 4}).status_code == 403
    assert client.put("/api/v1/images/999999/clinical", headers=doctor, json={"wbc": 4}).status_code == 404


def test_api_upload_with_a_bad_field_is_a_400_and_stores_nothing(trained_app):
    client = trained_app.test_client()
    images = _count(Image)
    data = synthetic.png_bytes(synthetic.radiograph(0, seed=304))
    response = client.post(
        "/api/v1/images",
        headers=api_token(trained_app, "doctor"),
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(data), "x.png"), "temperature_c": "50"},
    )
    assert response.status_code == 400 and "temperature_c" in response.get_json()["error"]
    assert _count(Image) == images


def test_csv_import_reads_clinical_columns_and_rejects_a_bad_row(app, tmp_path):
    from webapp.upload.importers import from_image_folder

    (tmp_path / "normal").mkdir()
    for index in range(3):
        (tmp_path / "normal" / f"{index}.png").write_bytes(synthetic.png_bytes(synthetic.radiograph(0, seed=index)))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "filename,label,patient_id,crp_mg_l,temperature_c,symptoms\n"
        "normal/0.png,normal,p0,12,37.1,cough\n"
        "normal/1.png,normal,p1,900,37.0,\n"
        "normal/2.png,normal,p2,,,\n",
        encoding="utf-8",
    )
    report = from_image_folder(tmp_path, "train", manifest=manifest)
    assert report.created == 2 and len(report.rejected) == 1 and "crp_mg_l" in report.rejected[0]
    stored = db.session.execute(db.select(ClinicalRecord)).scalars().all()
    assert [records.to_dict(row) for row in stored] == [{"symptoms": "cough", "temperature_c": 37.1, "crp_mg_l": 12.0}]
    assert _count(Image) == 2


def test_a_put_whose_body_is_not_json_is_refused_and_changes_nothing(app, tiny):
    """Issue 19: `Content-Type: text/plain` with body `x` answered 200 with the record unchanged."""
    client = app.test_client()
    doctor = api_token(app, "doctor")
    data = synthetic.png_bytes(synthetic.radiograph(0, seed=305))
    uploaded = client.post(
        "/api/v1/images",
        headers=doctor,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(data), "x.png"), "crp_mg_l": "120"},
    )
    image_id = uploaded.get_json()["image_id"]
    url = f"/api/v1/images/{image_id}/clinical"
    for content_type, body, status, words in [
        ("text/plain", b"x", 415, "Send the body as JSON (Content-Type: application/json)"),
        ("text/plain", b'{"crp_mg_l": 5}', 415, "Send the body as JSON (Content-Type: application/json)"),
        (
            "application/x-www-form-urlencoded",
            b"crp_mg_l=5",
            415,
            "Send the body as JSON (Content-Type: application/json)",
        ),
        ("application/json", b"x", 400, "The body is not valid JSON"),
    ]:
        response = client.put(url, headers={**doctor, "Content-Type": content_type}, data=body)
        assert (response.status_code, response.get_json()["error"][: len(words)]) == (status, words), content_type
    assert records.for_image(image_id) == {"crp_mg_l": 120.0}
    assert client.put(url, headers=doctor, json={"crp_mg_l": 5}).get_json()["clinical"] == {"crp_mg_l": 5.0}
