"""Helpers of the study report and FHIR tests: a study uploaded with patient fields, PDF text."""

from __future__ import annotations

import io

from pypdf import PdfReader

from tests import synthetic

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
