"""Drift by site, age band and sex: a synthetic drifted site is flagged, an undrifted one is not, a
small group is "too few images"; the page, the API and `medal drift` show it to engineers only."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests import synthetic
from tests.browser import log_in, serving
from tests.conftest import api_token, login, user


def _import(n: int, seed: int, split: str, site: str, age: int, brighter: int = 0, size: int = 32) -> list[int]:
    """n synthetic radiographs from one site; `brighter` and `size` make a drifted one."""
    from webapp.extensions import db
    from webapp.upload.ingest import ImageMeta, ingest

    ids = []
    for i in range(n):
        label = i % 2
        pixels = synthetic.radiograph(label, size=size, seed=seed * 10_000 + i).astype(np.int32) + brighter
        image, _ = ingest(
            synthetic.png_bytes(np.clip(pixels, 0, 255).astype(np.uint8)),
            origin="import",
            split=split,
            reference_label=synthetic.CLASSES[label] if split == "train" else None,
            meta=ImageMeta(site=site, patient_age=age, patient_sex="FM"[i % 2]),
        )
        db.session.flush()
        ids.append(image.id)
    db.session.commit()
    return ids


@pytest.fixture
def drift_app(app, tiny):
    """Champion v1 (a tiny model), 120 training images, and three sites of new images: north from the
    training images' generator, south brighter and larger, a clinic with only 8 images."""
    from webapp.monitoring import drift

    _import(120, 1, "train", "hospital", 40)
    north = _import(40, 2, "pool", "north", 30)
    south = _import(40, 3, "pool", "south", 70, brighter=70, size=48)
    _import(8, 4, "pool", "clinic", 3)
    app.drift_measured = drift.measure()
    app.sites = {"north": north, "south": south}
    return app


def _group(report: dict, dimension: str, name: str) -> dict:
    return next(g for g in report["groups"] if g["dimension"] == dimension and g["group"] == name)


def test_measure_stores_the_reference_once_and_every_new_image(drift_app):
    from webapp.extensions import db
    from webapp.models import DriftReference, ImageDriftStats
    from webapp.monitoring import drift

    assert drift_app.drift_measured["reference"] == 120 and drift_app.drift_measured["images"] == 88
    reference = db.session.get(DriftReference, 1)
    assert reference.population == 120 and len(reference.projection["components"]) == 8
    assert db.session.execute(db.select(db.func.count(ImageDriftStats.id))).scalar_one() == 208
    again = drift.measure()  # nothing left: no image is measured twice
    assert again["reference"] == 0 and again["images"] == 0
    row = db.session.execute(db.select(ImageDriftStats).filter_by(image_id=drift_app.sites["south"][0])).scalar_one()
    assert (row.width, row.height) == (48, 48) and sum(row.histogram) == pytest.approx(1.0, abs=1e-3)


def test_a_drifted_site_is_flagged_and_an_undrifted_one_is_not(drift_app):
    from webapp.monitoring import drift

    report = drift.report()
    assert report["model_version"] == 1 and report["reference"]["images"] == 120
    south, north = _group(report, "site", "south"), _group(report, "site", "north")
    assert south["drifting"] and south["status"] == "drifting"
    assert {"intensity_histogram", "mean_intensity", "width", "height"} <= set(south["drifting_features"])
    psi = next(c for c in south["checks"] if c["feature"] == "intensity_histogram")
    assert psi["test"] == "psi" and psi["value"] >= psi["threshold"] == 0.25
    assert not north["drifting"] and north["status"] == "stable", north["drifting_features"]
    assert all(not c["drifting"] for c in north["checks"])
    # the age band holding only south's patients drifts; north's band does not
    assert _group(report, "age_band", "65+")["drifting"] and not _group(report, "age_band", "18-64")["drifting"]
    assert drift.flagged_sites() == [
        {"site": "south", "images": 40, "features": south["drifting_features"], "model_version": 1}
    ]


def test_a_group_below_min_images_is_too_few_not_flagged(drift_app):
    from webapp.monitoring import drift

    clinic = _group(drift.report(), "site", "clinic")
    assert clinic["images"] == 8 and clinic["status"] == "too few images"
    assert clinic["drifting"] is False and clinic["checks"] == []
    assert _group(drift.report(), "age_band", "0-5")["status"] == "too few images"


def test_lower_doctor_agreement_at_a_site_is_drift(drift_app):
    """North looks like the training data, but doctors disagree with the model there far more often."""
    from tests.conftest import change_settings
    from webapp.extensions import db
    from webapp.inference import predictions
    from webapp.models import Image, Label
    from webapp.monitoring import drift

    change_settings(drift_app, {"drift": {"min_images": 20}})
    doctor = user("doctor")
    for site, agree_every in (("north", 4), ("south", 1)):  # north: one in four agreed; south: all
        for i, image_id in enumerate(drift_app.sites[site]):
            prediction = predictions.record(
                db.session.get(Image, image_id), 1, np.array([0.7, 0.3]), ["normal", "pneumonia"]
            )
            db.session.flush()
            agreed = i % agree_every == 0
            label = "normal" if agreed else "pneumonia"
            db.session.add(
                Label(image_id=image_id, user_id=doctor.id, prediction_id=prediction.id, label=label, agreed=agreed)
            )
    db.session.commit()
    north = _group(drift.report(), "site", "north")
    check = next(c for c in north["checks"] if c["feature"] == "agreement")
    assert north["agreement"] == {"agreed": 10, "reviewed": 40, "rate": 0.25}
    assert check["test"] == "fisher_exact" and check["drifting"] and north["drifting"]
    assert north["drifting_features"] == ["agreement"]


def test_the_report_is_compared_once_per_state_of_what_it_reads(drift_app):
    """Asked again with no new statistics, the report reads none of them again (doctors' answers and
    uploads are counted, and show at once); new statistics are compared on the next call."""
    from tests.statements import counted
    from webapp.extensions import db
    from webapp.inference import predictions
    from webapp.models import Image, Label
    from webapp.monitoring import drift

    def report_and_whether_statistics_were_read() -> tuple[dict, bool]:
        with counted() as statements:
            found = drift.report()
        sent = statements.to(drift_app.config["SQLALCHEMY_DATABASE_URI"])
        assert sent
        return found, any("image_drift_stats.histogram" in sql for sql in sent)

    first = drift.report()
    again, read = report_and_whether_statistics_were_read()
    assert again == first and not read
    doctor = user("doctor")
    for image_id in drift_app.sites["north"][:4]:
        prediction = predictions.record(
            db.session.get(Image, image_id), 1, np.array([0.7, 0.3]), ["normal", "pneumonia"]
        )
        db.session.flush()
        db.session.add(
            Label(image_id=image_id, user_id=doctor.id, prediction_id=prediction.id, label="pneumonia", agreed=False)
        )
    db.session.commit()
    answered, read = report_and_whether_statistics_were_read()
    assert _group(answered, "site", "north")["agreement"] == {"agreed": 0, "reviewed": 4, "rate": 0.0} and not read
    assert _group(first, "site", "north")["agreement"]["reviewed"] == 0
    _import(1, 5, "pool", "north", 30)
    uploaded, read = report_and_whether_statistics_were_read()
    assert uploaded["unmeasured_images"] == first["unmeasured_images"] + 1 and not read
    assert drift.measure()["images"] == 1
    measured, read = report_and_whether_statistics_were_read()
    assert _group(measured, "site", "north")["images"] == _group(first, "site", "north")["images"] + 1 and read
    assert measured["unmeasured_images"] == first["unmeasured_images"]


def test_nothing_measured_yet_says_so(app, tiny):
    from webapp.monitoring import drift

    report = drift.report()
    assert report["status"] == "not measured" and report["groups"] == [] and report["model_version"] == 1
    assert drift.flagged_sites() == []


def test_the_api_lists_groups_checks_thresholds_and_the_reference_version(drift_app):
    client = drift_app.test_client()
    response = client.get("/api/v1/monitoring/drift", headers=api_token(drift_app, "engineer"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["model_version"] == 1 and body["reference"]["model_version"] == 1
    assert body["thresholds"] == {"psi_alert": 0.25, "p_value": 0.01, "min_images": 30}
    south = _group(body, "site", "south")
    assert south["drifting"] is True
    for check in south["checks"]:
        assert {"feature", "test", "value", "threshold", "drifting"} <= set(check)
    assert _group(body, "site", "clinic")["status"] == "too few images"


def test_the_api_and_the_page_are_for_engineers(drift_app):
    client = drift_app.test_client()
    assert client.get("/api/v1/monitoring/drift").status_code == 401
    assert client.get("/api/v1/monitoring/drift", headers=api_token(drift_app, "doctor")).status_code == 403
    assert client.get("/api/v1/monitoring/drift", headers=api_token(drift_app, "admin")).status_code == 200
    assert client.get("/drift").status_code == 302  # to the log-in page
    login(client, "doctor")
    assert client.get("/drift").status_code == 403


def test_the_page_flags_the_drifting_site(drift_app):
    client = drift_app.test_client()
    login(client, "engineer")
    page = client.get("/drift").get_data(as_text=True)
    flagged = re.search(r'<span class="tag bad">(\d+) drifting</span>(.*?)</p>', page, re.S)
    assert flagged and "site <strong>south</strong>" in flagged.group(2)
    assert "site <strong>north</strong>" not in flagged.group(2)
    assert "too few images" in page and "stable" in page
    assert 'href="/drift"' in page  # the nav entry


def test_the_model_dashboard_flags_the_drifting_site_too(drift_app):
    client = drift_app.test_client()
    login(client, "engineer")
    summary = re.search(
        r'<div class="card" id="drift-summary">(.*?)</div>', client.get("/dashboard").get_data(as_text=True), re.S
    )
    assert summary and "site <strong>south</strong>" in summary.group(1) and 'href="/drift"' in summary.group(1)
    assert "site <strong>north</strong>" not in summary.group(1)
    assert "not measured yet" not in summary.group(1)
    _import(1, 5, "pool", "north", 30)  # arrives after the pass: the verdicts say they do not cover it
    page = client.get("/dashboard").get_data(as_text=True)
    assert "1 image not measured yet" in re.search(r'id="drift-summary">(.*?)</div>', page, re.S).group(1)


def test_the_model_dashboard_says_nothing_of_drift_before_it_is_measured(app, tiny):
    client = app.test_client()
    login(client, "engineer")
    assert 'id="drift-summary"' not in client.get("/dashboard").get_data(as_text=True)


def test_medal_drift_commands(app, tiny):
    from webapp.extensions import db
    from webapp.models import DriftReference

    _import(40, 1, "train", "hospital", 40)
    _import(35, 3, "pool", "south", 70, brighter=70, size=48)
    runner = app.test_cli_runner()
    assert "not measured yet" in runner.invoke(args=["drift", "show"]).output
    result = runner.invoke(args=["drift", "measure"])
    assert result.exit_code == 0, result.output
    assert "measured 40 training images and 35 others" in result.output
    assert db.session.get(DriftReference, 1) is not None
    shown = runner.invoke(args=["drift", "show"]).output
    assert "south" in shown and "drifting" in shown


@pytest.fixture
def drift_live_url(drift_app):
    with serving(drift_app) as url:
        yield url


def test_drift_page_in_chromium(browser, drift_live_url, screenshots):
    from selenium.webdriver.common.by import By

    log_in(browser, drift_live_url, "engineer")
    browser.get(f"{drift_live_url}/drift")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Drift"
    assert "drifting" in browser.find_element(By.CSS_SELECTOR, ".tag.bad").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg polyline")) >= 2 * 3
    # script errors and CSP refusals (the favicon the app does not serve is no page error)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert not errors, errors
    browser.save_screenshot(str(screenshots / "drift.png"))
