"""The upload page's errors are JSON, and a large upload is stored and explained at a bounded size."""

import io

import numpy as np
from PIL import Image as PILImage

from tests import synthetic
from tests.conftest import api_token, change_settings, login
from webapp.extensions import db
from webapp.inference import explanations
from webapp.models import Image, Prediction


def test_a_metadata_error_on_the_upload_page_is_json(app, tiny, csrf_off):
    """Defect 13a: it came back as an HTML page and the script showed "SyntaxError: Unexpected token '<'"."""
    client = app.test_client()
    login(client, "doctor")
    data = synthetic.png_bytes(synthetic.radiograph(1, seed=501))
    response = client.post(
        "/upload",
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(data), "x.png"), "patient_age": "old"},
    )
    assert response.status_code == 400 and response.is_json
    assert "patient_age" in response.get_json()["error"]


def test_a_too_large_upload_on_the_upload_page_is_json(app, tiny, csrf_off):
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    client = app.test_client()
    login(client, "doctor")
    response = client.post(
        "/upload", content_type="multipart/form-data", data={"file": (io.BytesIO(b"\0" * 20_000), "big.png")}
    )
    assert response.status_code == 413 and response.is_json
    assert "too large" in response.get_json()["error"]


def test_a_large_upload_is_stored_and_explained_at_the_bounded_size(app, tiny, home):
    change_settings(app, {"images": {"store_max_side": 128}})
    pixels = np.kron(synthetic.radiograph(1, seed=502), np.ones((20, 15), dtype=np.uint8))  # 640 x 480
    response = app.test_client().post(
        "/api/v1/images",
        headers=api_token(app, "doctor"),
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(synthetic.png_bytes(pixels)), "big.png")},
    )
    assert response.status_code == 201, response.get_json()
    image = db.session.get(Image, response.get_json()["image_id"])
    assert (image.width, image.height) == (480, 640)  # as the file declared
    with PILImage.open(home / "images" / image.path) as stored:
        assert stored.size == (96, 128)
    prediction = db.session.get(Prediction, response.get_json()["prediction"]["id"])
    with PILImage.open(explanations.heatmap_path(prediction)) as overlay:  # made after the answer
        assert overlay.size == (96, 128)


def test_a_thin_image_in_a_batch_gets_its_own_refusal_and_the_others_are_stored(app, tiny, csrf_off):
    """Defect 1: one 1-px file once stopped the batch after half storing itself."""
    client = app.test_client()
    login(client, "doctor")
    before = db.session.execute(db.select(db.func.count()).select_from(Image)).scalar_one()
    files = [
        (io.BytesIO(synthetic.png_bytes(synthetic.radiograph(0, seed=511))), "a.png"),
        (io.BytesIO(synthetic.png_bytes(np.full((1, 200), 90, dtype=np.uint8))), "thin.png"),
        (io.BytesIO(synthetic.png_bytes(synthetic.radiograph(1, seed=512))), "b.png"),
    ]
    response = client.post("/upload", data={"file": files}, content_type="multipart/form-data")
    results = response.get_json()["results"]
    assert response.status_code == 200 and [r["ok"] for r in results] == [True, False, True]
    assert results[1]["status"] == 400 and "at least" in results[1]["error"]
    after = db.session.execute(db.select(db.func.count()).select_from(Image)).scalar_one()
    predicted = db.session.execute(db.select(db.func.count(db.distinct(Prediction.image_id)))).scalar_one()
    assert after == before + 2 and predicted == after  # no image without its prediction
