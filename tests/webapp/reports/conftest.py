"""The report tests' shared study: signed by a doctor with a full name, in a hospital with a header."""

from __future__ import annotations

import pytest

from tests.conftest import api_token, change_settings
from tests.webapp.reports.study_helpers import (
    FINDINGS,
    HEADER,
    IMPRESSION,
    confirm,
    set_probabilities,
    show_as,
    sign_as,
    upload_study,
)


@pytest.fixture
def signed_study(trained_app, trained_client):
    """A study the doctor ("Dr Ana Rossi, Consultant radiologist") reported with findings and an
    impression, in a hospital with a header, and pneumonia shown as "Lobar pneumonia"."""
    change_settings(trained_app, {"report": HEADER})
    sign_as("doctor", "Dr Ana Rossi", "Consultant radiologist")
    show_as("pneumonia", "Lobar pneumonia")
    headers = api_token(trained_app, "doctor")
    image_id = upload_study(trained_client, headers, seed=61)["image_id"]
    set_probabilities(image_id, {"normal": 0.2, "pneumonia": 0.8})
    confirm(trained_client, headers, image_id, "pneumonia", FINDINGS, IMPRESSION)
    return {"id": image_id, "headers": headers}
