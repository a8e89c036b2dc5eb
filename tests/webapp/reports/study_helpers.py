"""Helpers of the study report and FHIR tests: a study uploaded with patient fields, PDF text; a doctor's
signature, a class's display name, a confirmed study with findings and impression, chosen probabilities."""

from __future__ import annotations

import io

from pypdf import PdfReader

from tests import synthetic
from tests.conftest import user

PATIENT_ID = "MRN-4471-ZEBRA"  # the raw patient identifier: it must never appear in a report


def upload_study(client, headers: dict, seed: int = 11) -> dict:
    """Upload one synthetic radiograph with patient fields through the API; returns the answer."""
    data = synthetic.png_bytes(synthetic.radiograph(1, seed=seed))
    response = client.post(
        "/api/v1/images",
        headers=headers,
        content_type="multipart/form-data",
        data={
            "file": (io.BytesIO(data), "x.png"),
            "patient_id": PATIENT_ID,
            "patient_age": "7",
            "patient_sex": "F",
            "site": "north-ward",
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF"), data[:40]
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


FINDINGS = "Patchy airspace opacity in the right lower zone.\nNo pleural effusion."
IMPRESSION = "Right lower lobe consolidation, in keeping with infection."
HEADER = {
    "institution": "St Mary's Hospital",
    "department": "Department of Radiology",
    "address": "Praed Street, London",
}


def sign_as(name: str, full_name: str | None, job_title: str | None) -> None:
    from webapp.extensions import db

    found = user(name)
    found.full_name, found.job_title = full_name, job_title
    db.session.commit()


def show_as(class_name: str, display: str) -> None:
    """Give a class a display name, as /settings/classes does."""
    from flask import g

    from webapp.extensions import db
    from webapp.models import LabelClass

    db.session.get_one(LabelClass, class_name).display = display
    db.session.commit()
    g.pop("medal_displays", None)  # the test holds one app context: forget its cached names


def confirm(client, headers: dict, image_id: int, label: str, findings=None, impression=None) -> None:
    """The doctor's review label with the findings and impression they wrote (set on the row, as the
    review page stores them)."""
    from webapp.extensions import db
    from webapp.models import Label

    answer = client.post(f"/api/v1/images/{image_id}/labels", headers=headers, json={"label": label})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    row = db.session.execute(db.select(Label).filter_by(image_id=image_id)).scalar_one()
    row.findings, row.impression = findings, impression
    db.session.commit()


def set_probabilities(image_id: int, probabilities: dict[str, float]) -> None:
    from webapp.extensions import db
    from webapp.inference import predictions

    prediction = predictions.latest(image_id)
    top = max(probabilities, key=probabilities.__getitem__)
    prediction.probabilities, prediction.predicted_class, prediction.confidence = probabilities, top, probabilities[top]
    db.session.commit()
