"""Helpers of the prior-studies tests: a patient's studies uploaded through the API, dated apart."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from tests import synthetic
from webapp.extensions import db
from webapp.models import Image

PATIENT_ID = "MRN-PRIOR-7781"  # the raw identifier: no page or answer may show it (nor its pseudonym)
FIRST_DAY = datetime(2025, 3, 2, 9, 30)


def upload(client, headers: dict, seed: int, patient_id: str | None = PATIENT_ID, label: int = 1) -> dict:
    """One synthetic radiograph through the API with the patient id; returns the answer."""
    form = {"file": (io.BytesIO(synthetic.png_bytes(synthetic.radiograph(label, seed=seed))), "x.png")}
    if patient_id is not None:
        form["patient_id"] = patient_id
    response = client.post("/api/v1/images", headers=headers, content_type="multipart/form-data", data=form)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def studies(client, headers: dict, seeds: list[int], patient_id: str | None = PATIENT_ID) -> list[dict]:
    """Studies of one patient, uploaded in order and dated a month apart (uploads keep no study date)."""
    answers = [upload(client, headers, seed, patient_id) for seed in seeds]
    for months, answer in enumerate(answers):
        db.session.get(Image, answer["image_id"]).created_at = FIRST_DAY + timedelta(days=30 * months)
    db.session.commit()
    return answers
