"""Uploading X-rays through the page: predictions, versions, and bad input that stores nothing."""

import io

import numpy as np

from tests import synthetic
from tests.conftest import change_settings, login
from webapp.extensions import db
from webapp.models import Image, Prediction


def _count(model) -> int:
    return db.session.execute(db.select(db.func.count()).select_from(model)).scalar_one()


def test_upload_page_needs_login(client):
    response = client.get("/upload")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_upload_predicts_every_class_with_the_model_version(trained_client, csrf_off):
    login(trained_client, "doctor")
    files = [
        (io.BytesIO(synthetic.png_bytes(synthetic.radiograph(1, seed=99))), "a.png"),
        (io.BytesIO(synthetic.jpeg_bytes(synthetic.radiograph(0, seed=98))), "b.jpg"),
        (io.BytesIO(synthetic.dicom_bytes(synthetic.radiograph(1, seed=97))), "c.dcm"),
    ]
    response = trained_client.post("/upload", data={"file": files}, content_type="multipart/form-data")
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["ok"] for r in results] == [True, True, True]
    for result in results:
        prediction = result["prediction"]
        assert set(prediction["probabilities"]) == {"normal", "pneumonia"}
        assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-4
        assert prediction["model_version"] == 1
        assert prediction["predicted_class"] == max(prediction["probabilities"], key=prediction["probabilities"].get)


def test_dicom_upload_keeps_no_patient_name_on_disk(trained_client, csrf_off, home):
    login(trained_client, "doctor")
    data = synthetic.dicom_bytes(synthetic.radiograph(1, seed=5), patient_name="Secret^Patient")
    trained_client.post("/upload", data={"file": (io.BytesIO(data), "x.dcm")}, content_type="multipart/form-data")
    stored = db.session.execute(db.select(Image).filter_by(source_format="dicom")).scalar_one()
    assert b"Secret" not in (home / "images" / stored.path).read_bytes()


def test_bad_files_get_4xx_and_store_nothing(trained_client, csrf_off):
    login(trained_client, "doctor")
    before_images, before_predictions = _count(Image), _count(Prediction)
    cases = [
        (b"", 400),
        (b"not an image", 415),
        (synthetic.png_bytes(synthetic.radiograph(0))[:70], 400),
        (synthetic.dicom_bytes(synthetic.radiograph(0), with_pixels=False), 400),
    ]
    for data, status in cases:
        response = trained_client.post(
            "/upload", data={"file": (io.BytesIO(data), "bad.png")}, content_type="multipart/form-data"
        )
        assert response.status_code == status
        assert response.get_json()["results"][0]["error"]
    assert _count(Image) == before_images and _count(Prediction) == before_predictions


def test_one_bad_file_does_not_lose_the_good_one(trained_client, csrf_off):
    login(trained_client, "doctor")
    files = [
        (io.BytesIO(b"junk"), "junk.png"),
        (io.BytesIO(synthetic.png_bytes(synthetic.radiograph(1, seed=1234))), "good.png"),
    ]
    response = trained_client.post("/upload", data={"file": files}, content_type="multipart/form-data")
    assert response.status_code == 200
    assert [r["ok"] for r in response.get_json()["results"]] == [False, True]


def test_image_over_pixel_limit_is_413(trained_app, csrf_off, monkeypatch):
    change_settings(trained_app, {"images": {"max_pixels": 50 * 50}})
    client = trained_app.test_client()
    login(client, "doctor")
    big = synthetic.png_bytes(np.zeros((60, 60), dtype=np.uint8))
    response = client.post("/upload", data={"file": (io.BytesIO(big), "big.png")}, content_type="multipart/form-data")
    assert response.status_code == 413
    assert "over the limit" in response.get_json()["results"][0]["error"]


def test_same_bytes_twice_store_one_image(trained_client, csrf_off):
    login(trained_client, "doctor")
    data = synthetic.png_bytes(synthetic.radiograph(1, seed=4321))
    ids = []
    for _ in range(2):
        response = trained_client.post(
            "/upload", data={"file": (io.BytesIO(data), "x.png")}, content_type="multipart/form-data"
        )
        ids.append(response.get_json()["results"][0]["image_id"])
    assert ids[0] == ids[1]


def test_forms_without_csrf_token_are_refused(trained_client):
    response = trained_client.post("/login", data={"username": "doctor", "password": "doctor-pass"})
    assert response.status_code == 400  # no CSRF token on the log-in form
    login(trained_client, "doctor")
    data = synthetic.png_bytes(synthetic.radiograph(1, seed=31))
    response = trained_client.post(
        "/upload", data={"file": (io.BytesIO(data), "x.png")}, content_type="multipart/form-data"
    )
    assert response.status_code == 400
    assert _count(Image) == 52  # the 40 training and 12 pool images only


def test_prediction_page_shows_version_bars_and_escapes_text(trained_client, csrf_off):
    login(trained_client, "doctor")
    data = synthetic.png_bytes(synthetic.radiograph(1, seed=77))
    result = trained_client.post(
        "/upload", data={"file": (io.BytesIO(data), "<script>.png")}, content_type="multipart/form-data"
    ).get_json()["results"][0]
    page = trained_client.get(f"/predictions/{result['prediction']['id']}").get_data(as_text=True)
    assert "model version <strong>v1</strong>" in page
    assert "normal" in page and "pneumonia" in page and "<script>.png" not in page
    with trained_client.get(f"/predictions/{result['prediction']['id']}/heatmap.png") as heat:
        assert heat.status_code == 200 and heat.data[:8] == b"\x89PNG\r\n\x1a\n"
    with trained_client.get(f"/images/{result['image_id']}.png") as image:
        assert image.status_code == 200 and image.mimetype == "image/png"
