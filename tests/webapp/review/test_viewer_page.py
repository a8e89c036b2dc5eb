"""What the review and prediction pages serve to the viewer: the full stored image, the heat map
hidden until asked for, the vendored pan-zoom library, thumbnails of the doctor's recent labels."""

import io
import re

from PIL import Image as PILImage

from tests.conftest import login
from webapp.extensions import db
from webapp.inference.views import THUMBNAIL_PX
from webapp.models import Image, Label
from webapp.upload.ingest import ingest


def test_review_page_serves_the_full_image_with_the_heat_map_off(trained_client):
    login(trained_client, "doctor")
    page = trained_client.get("/review").get_data(as_text=True)
    image_id = int(re.search(r'id="xray-image" src="/images/(\d+)\.png"', page).group(1))
    heat = re.search(r'<img class="heat" id="heat"[^>]*>', page).group(0)
    assert " hidden" in heat and "heatmap.png" in heat
    assert 'id="heat-opacity"' in page and 'class="legend"' in page
    for script in ("vendor/panzoom/panzoom.min.js", "viewer.js", "review.js"):
        assert f"/static/{script}" in page
        with trained_client.get(f"/static/{script}") as response:
            assert response.status_code == 200
    assert "<script>" not in page  # the CSP allows no inline script
    stored = db.session.get(Image, image_id)
    with trained_client.get(f"/images/{image_id}.png") as full:
        assert PILImage.open(io.BytesIO(full.data)).size == (stored.width, stored.height)


def test_thumbnails_are_small_cached_and_for_signed_in_users(trained_app):
    client = trained_app.test_client()
    big = PILImage.new("L", (900, 600), 128)
    buffer = io.BytesIO()
    big.save(buffer, format="PNG")
    image, _ = ingest(buffer.getvalue(), origin="upload")
    db.session.commit()
    assert client.get(f"/images/{image.id}/thumbnail.png").status_code == 302  # to the log-in page
    login(client, "doctor")
    with client.get(f"/images/{image.id}/thumbnail.png") as response:
        assert response.status_code == 200 and response.mimetype == "image/png"
        assert PILImage.open(io.BytesIO(response.data)).size == (THUMBNAIL_PX, THUMBNAIL_PX * 600 // 900)
        with client.get(f"/images/{image.id}/thumbnail.png") as again:  # the cached file
            assert again.data == response.data
    assert client.get("/images/999999/thumbnail.png").status_code == 404


def test_recent_labels_show_as_thumbnails_beside_the_viewer(trained_client):
    login(trained_client, "doctor")
    assert "None yet" in trained_client.get("/review").get_data(as_text=True)
    labeled = []
    for _ in range(2):
        page = trained_client.get("/review").get_data(as_text=True)
        image_id = int(re.search(r'id="xray-image" src="/images/(\d+)\.png"', page).group(1))
        form = dict(re.findall(r'name="(csrf_token|prediction_id)" value="([^"]*)"', page))
        trained_client.post(f"/review/{image_id}", data={**form, "label": "pneumonia"})
        labeled.append(image_id)
    page = trained_client.get("/review").get_data(as_text=True)
    recent = page.split('id="recent-labels"')[1]
    shown = [int(i) for i in re.findall(r"/images/(\d+)/thumbnail\.png", recent)]
    assert shown == labeled[::-1]  # newest first
    prediction_id = db.session.execute(db.select(Label.prediction_id).filter_by(image_id=labeled[-1])).scalar_one()
    assert f'href="/predictions/{prediction_id}"' in recent
    other = trained_client.get(f"/predictions/{prediction_id}").get_data(as_text=True)
    assert 'id="recent-labels"' in other and 'id="viewer-stage"' in other
