"""An upload answers with its prediction without waiting for Grad-CAM; the heat map follows, is
computed once, waits for whoever asks early, and is recomputed when a crash left it unmade."""

import hashlib
import io
import sys
import threading

import numpy as np
from PIL import Image as PILImage

from tests import synthetic
from tests.conftest import api_token, login
from tests.webapp.test_crash import kill_at
from webapp.extensions import db
from webapp.inference import explanations
from webapp.models import Prediction

UPLOAD = """
import sys
from webapp import create_app
from webapp.extensions import db
from webapp.models import User
from webapp.upload.ingest import upload

app = create_app()
with app.app_context():
    doctor = db.session.execute(db.select(User).filter_by(username="doctor")).scalar_one()
    upload(open(sys.argv[1], "rb").read(), origin="api", user=doctor)
"""


def _large_film(seed: int) -> bytes:
    return synthetic.png_bytes(np.kron(synthetic.radiograph(1, seed=seed), np.ones((30, 40), dtype=np.uint8)))


def _post(client, data: bytes) -> dict:
    response = client.post("/upload", data={"file": (io.BytesIO(data), "x.png")}, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"][0]


def test_the_upload_answers_with_its_prediction_while_the_heat_map_is_still_being_made(app, tiny, csrf_off):
    """The image's heat-map lock is held throughout (as by a Grad-CAM in progress elsewhere): the
    upload still answers, so it never waits for one; the overlay is stored once the lock is free."""
    client = app.test_client()
    login(client, "doctor")
    data = _large_film(801)  # 960 x 1280: stored whole, its overlay drawn at the viewer's size
    with explanations.image_lock(hashlib.sha256(data).hexdigest(), 1, wait_seconds=5):
        result = _post(client, data)
        prediction = db.session.get(Prediction, result["prediction"]["id"])
        assert result["prediction"]["model_version"] == 1 and result["prediction"]["location"] is None
        assert result["heatmap"] == {"status": "pending", "url": f"/predictions/{prediction.id}/heatmap.png"}
        assert prediction.heatmap_path is None
    assert explanations.drain(timeout=120)  # the background computation the upload started
    db.session.expire_all()
    assert explanations.ready(prediction) and prediction.location.startswith("Most of the activation")
    with PILImage.open(prediction.heatmap_path) as overlay:
        assert overlay.size == (explanations.OVERLAY_MAX_SIDE, explanations.OVERLAY_MAX_SIDE * 3 // 4)  # (w, h)


def test_the_api_upload_says_the_heat_map_is_pending_and_the_image_record_shows_it_later(app, tiny):
    data = _large_film(802)
    with explanations.image_lock(hashlib.sha256(data).hexdigest(), 1, wait_seconds=5):
        body = (
            app.test_client()
            .post("/api/v1/images", headers=api_token(app, "doctor"), data={"file": (io.BytesIO(data), "x.png")})
            .get_json()
        )
    assert body["heatmap_status"] == "pending" and body["prediction"]["location"] is None
    assert explanations.drain(timeout=120)
    record = app.test_client().get(f"/api/v1/images/{body['image_id']}", headers=api_token(app, "doctor")).get_json()
    assert record["prediction"]["location"].startswith("Most of the activation")


def test_a_heat_map_requested_before_it_is_ready_waits_for_the_one_computation_and_arrives(app, tiny, csrf_off):
    client = app.test_client()
    login(client, "doctor")
    data = synthetic.png_bytes(synthetic.radiograph(0, seed=803))
    answers: list = []
    with explanations.image_lock(hashlib.sha256(data).hexdigest(), 1, wait_seconds=5):
        result = _post(client, data)
        target = explanations.overlay_file(hashlib.sha256(data).hexdigest(), 1)

        def ask() -> None:
            with app.app_context(), client.get(result["heatmap"]["url"]) as response:
                answers.append((response.status_code, response.data[:8], target.stat().st_ino))

        asking = threading.Thread(target=ask)
        asking.start()
        asking.join(1.0)
        assert asking.is_alive() and not target.exists()  # waiting: nothing has been computed yet
    asking.join(120)
    assert answers and answers[0][:2] == (200, b"\x89PNG\r\n\x1a\n")
    assert explanations.drain(timeout=120)
    assert target.stat().st_ino == answers[0][2]  # the background task found it made: computed once


def test_a_crash_between_prediction_and_heat_map_leaves_a_prediction_whose_heat_map_is_made_on_request(
    app, tiny, csrf_off, tmp_path
):
    film = tmp_path / "film.png"
    film.write_bytes(synthetic.png_bytes(synthetic.radiograph(1, seed=804)))
    kill_at("upload:predicted", [sys.executable, "-c", UPLOAD, str(film)], tmp_path)
    prediction = db.session.execute(db.select(Prediction).order_by(Prediction.id.desc())).scalars().first()
    assert prediction is not None and prediction.model_version == 1  # committed with its image
    assert prediction.heatmap_path is None and not explanations.overlay_file(prediction.image.sha256, 1).exists()
    client = app.test_client()
    login(client, "doctor")
    with client.get(f"/predictions/{prediction.id}/heatmap.png") as heat:
        assert heat.status_code == 200 and heat.data[:8] == b"\x89PNG\r\n\x1a\n"
    db.session.expire_all()
    assert explanations.ready(prediction) and prediction.location
    # a heat map lost from disk is made again on request too
    explanations.overlay_file(prediction.image.sha256, 1).unlink()
    with client.get(f"/predictions/{prediction.id}/heatmap.png") as heat:
        assert heat.status_code == 200 and heat.data[:8] == b"\x89PNG\r\n\x1a\n"
