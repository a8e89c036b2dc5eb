"""The clinical models page with many reviewed studies: it counts them as the worker's fit does, in
queries that do not grow with the studies (it once fetched each study's prediction on its own)."""

import re

import numpy as np

from tests import synthetic
from tests.conftest import login, user
from tests.statements import counted
from webapp.clinical import records
from webapp.extensions import db
from webapp.inference import predictions
from webapp.models import Label
from webapp.upload.ingest import ingest


def _reviewed_studies(n: int, seed: int) -> None:
    """n studies with clinical data, the champion's (v1) prediction and a doctor's review label."""
    doctor = user("doctor")
    for index in range(n):
        image, _ = ingest(synthetic.png_bytes(synthetic.radiograph(index % 2, seed=seed + index)), origin="import")
        db.session.flush()
        records.save(image.id, {"crp_mg_l": 20.0 + index, "temperature_c": 37.5}, doctor)
        prediction = predictions.record(image, 1, np.array([0.6, 0.4]), ["normal", "pneumonia"])
        db.session.flush()
        db.session.add(Label(image_id=image.id, user_id=doctor.id, prediction_id=prediction.id, label="pneumonia"))
    db.session.commit()


def _progress(page: str) -> str:
    """What the page says about the studies the worker waits for, e.g. '4 do now'."""
    return re.search(r"carry clinical data;\s+(\d+ do(?:es)? now)", page).group(1)


def _page_and_queries(app, client) -> tuple[str, int]:
    with counted() as statements:
        response = client.get("/clinical/models")
    assert response.status_code == 200
    return response.get_data(as_text=True), len(statements.to(app.config["SQLALCHEMY_DATABASE_URI"]))


def test_the_page_counts_studies_in_the_same_queries_for_four_or_sixteen(app, tiny):
    client = app.test_client()
    login(client, "engineer")
    _reviewed_studies(4, seed=100)
    page, few = _page_and_queries(app, client)
    assert _progress(page) == "4 do now"
    _reviewed_studies(12, seed=200)
    page, many = _page_and_queries(app, client)
    assert _progress(page) == "16 do now"
    assert many == few
