"""Must hold 2: every hostile file gets a clear 4xx or is ingested with a prediction, through the
API and through the upload page; none gives a 5xx, and a refused file leaves no row and no file."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import api_token, login
from tests.webapp.upload.hostile_corpus import ANY_4XX, OK, Case, corpus
from webapp.extensions import db
from webapp.models import Image, Prediction


def _count(model) -> int:
    return db.session.execute(db.select(db.func.count()).select_from(model)).scalar_one()


def _state(home: Path) -> tuple[int, int, int]:
    stored = [p for p in (home / "images").rglob("*") if p.is_file()] if (home / "images").exists() else []
    return _count(Image), _count(Prediction), len(stored)


def _api(client, headers, case):
    response = client.post(
        "/api/v1/images",
        headers=headers,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(case.data), case.filename)},
    )
    body = response.get_json(silent=True)
    if body is None:
        return response.status_code, None, "not JSON: " + response.get_data(as_text=True)[:80]
    return response.status_code, body.get("prediction"), body.get("error")


def _page(client, case):
    response = client.post(
        "/upload", content_type="multipart/form-data", data={"file": (io.BytesIO(case.data), case.filename)}
    )
    body = response.get_json(silent=True)
    if body is None:
        return response.status_code, None, "not JSON: " + response.get_data(as_text=True)[:80]
    result = body["results"][0]
    return response.status_code, result.get("prediction"), result.get("error")


def test_every_hostile_file_gets_a_4xx_or_is_ingested(app, tiny, csrf_off, home):
    cases = corpus()
    assert len(cases) >= 60
    headers = api_token(app, "doctor")
    page = app.test_client()
    login(page, "doctor")
    api = app.test_client()
    wrong, outcomes = [], Counter()
    for case in cases:
        for channel, send in (("api", lambda c: _api(api, headers, c)), ("page", lambda c: _page(page, c))):
            before = _state(home)
            status, prediction, error = send(case)
            after = _state(home)
            outcomes[(channel, status)] += 1
            expected = case.expect
            if status >= 500:
                wrong.append(f"{channel} {case.name}: {status} {error}")
            elif expected == OK:
                if (
                    status not in (200, 201)
                    or not prediction
                    or abs(sum(prediction["probabilities"].values()) - 1) > 1e-3
                ):
                    wrong.append(f"{channel} {case.name}: expected a prediction, got {status} {error}")
                created = after[0] - before[0]
                if created not in (0, 1) or after[1] - before[1] != created or after[2] - before[2] != created:
                    wrong.append(f"{channel} {case.name}: rows/files {before} -> {after}")
            else:
                if not (400 <= status < 500) or (expected != ANY_4XX and status != expected):
                    wrong.append(f"{channel} {case.name}: expected {expected}, got {status} {error}")
                if not error or error.startswith("not JSON"):
                    wrong.append(f"{channel} {case.name}: no message ({error})")
                if after != before:
                    wrong.append(f"{channel} {case.name}: a refused file left rows/files {before} -> {after}")
    print(f"{len(cases)} files x 2 endpoints: " + ", ".join(f"{c} {s}: {n}" for (c, s), n in sorted(outcomes.items())))
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("side", [1, 2])
def test_a_one_or_two_pixel_image_is_refused_and_stores_nothing(app, tiny, home, side):
    """Defect 1: such an image once crashed prediction with a 500 after it was stored."""
    from tests.webapp.upload.hostile_corpus import _png

    before = _state(home)
    response = app.test_client().post(
        "/api/v1/images",
        headers=api_token(app, "doctor"),
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(_png(60 + side, size=(side, 300))), "thin.png")},
    )
    assert response.status_code == 400
    assert "at least 16 pixels" in response.get_json()["error"]
    assert _state(home) == before


@pytest.mark.parametrize("defined_length", [False, True], ids=["undefined lengths", "defined lengths"])
def test_a_dicom_nested_500_deep_is_a_400_naming_the_reason_and_stores_nothing(
    app, tiny, csrf_off, home, defined_length
):
    """Issue 19: a CR file with 500-deep nested sequences once gave a 500 (RecursionError)."""
    from tests import synthetic

    data = synthetic.dicom_nested(synthetic.radiograph(1, size=64, seed=70), 500, defined_length)
    case = Case("nested", data, 400, "deep.dcm")
    page = app.test_client()
    login(page, "doctor")
    before = _state(home)
    for status, _, error in (_api(app.test_client(), api_token(app, "doctor"), case), _page(page, case)):
        assert status == 400, error
        assert error.startswith("The DICOM file nests its sequences more than 32 levels deep"), error
    assert _state(home) == before
