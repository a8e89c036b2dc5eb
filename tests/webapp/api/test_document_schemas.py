"""The trust meter, drift and model metrics documents: the contract declares each one's real shape
(not a free-form object), and what the routes answer with real data validates against it."""

from __future__ import annotations

import json

import jsonschema_rs
import numpy as np

from tests.conftest import api_token, user
from tests.webapp.dashboard.test_dashboard import _promote_then_roll_back
from tests.webapp.monitoring import trust_seed
from tests.webapp.monitoring.test_drift import drift_app  # noqa: F401 (a fixture)
from webapp.extensions import db


def _not_json(constant: str):
    raise AssertionError(f"the body holds {constant}, which is not JSON")


def _validated(app, path: str) -> dict:
    """GET `path` as an engineer; the body, checked against the schema the served contract declares."""
    client = app.test_client()
    spec = client.get("/api/v1/openapi.json").get_json()
    schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    declared = spec["components"]["schemas"][schema["$ref"].split("/")[-1]]
    assert declared["type"] == "object" and declared["properties"] and declared["required"], declared
    response = client.get(path, headers=api_token(app, "engineer"))
    assert response.status_code == 200, response.data
    body = json.loads(response.get_data(as_text=True), parse_constant=_not_json)
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": spec["components"]})
    errors = [f"{'/'.join(map(str, error.instance_path))}: {error.message}" for error in validator.iter_errors(body)]
    assert not errors, errors
    return body


def test_the_trust_meter_matches_its_schema(app):
    trust_seed.reviews(12, 10, "normal", site="north")
    trust_seed.reviews(6, 2, "pneumonia", site="south", confidence=0.95, version=2)
    trust_seed.reviews(3, 3, "normal", site=None)
    db.session.commit()
    body = _validated(app, "/api/v1/monitoring/trust")
    assert body["overall"]["reviews"] == 21 and body["versions"] == {"1": 15, "2": 6}
    assert {site["site"] for site in body["sites"]} == {"north", "south", "(no site)"}
    assert all(entry["classes"] for entry in body["sites"]) and body["confident"]["reviews"] == 6


def test_drift_matches_its_schema(drift_app):  # noqa: F811
    from webapp.inference import predictions
    from webapp.models import Image, Label

    doctor = user("doctor")
    for site, agree_every in (("north", 2), ("south", 3)):  # every group has answers to test agreement on
        for i, image_id in enumerate(drift_app.sites[site]):
            image = db.session.get(Image, image_id)
            prediction = predictions.record(image, 1, np.array([0.7, 0.3]), ["normal", "pneumonia"])
            db.session.flush()
            agreed = i % agree_every == 0
            db.session.add(
                Label(
                    image_id=image_id,
                    user_id=doctor.id,
                    prediction_id=prediction.id,
                    label="normal" if agreed else "pneumonia",
                    agreed=agreed,
                )
            )
    db.session.commit()
    body = _validated(drift_app, "/api/v1/monitoring/drift")
    assert body["status"] == "measured" and body["reference"]["images"] == 120
    statuses = {group["status"] for group in body["groups"]}
    assert {"drifting", "too few images"} <= statuses
    tests = {check["test"] for group in body["groups"] for check in group["checks"]}
    assert tests == {"psi", "ks_2samp", "chi2_contingency", "fisher_exact"}


def test_drift_before_any_review_is_json_with_null_for_the_test_that_could_not_run(drift_app):  # noqa: F811
    body = _validated(drift_app, "/api/v1/monitoring/drift")  # _validated refuses NaN
    agreement = [check for group in body["groups"] for check in group["checks"] if check["test"] == "fisher_exact"]
    assert agreement and all(check["value"] is None and check["note"] for check in agreement)


def test_nothing_measured_yet_matches_the_drift_schema(app, tiny):
    body = _validated(app, "/api/v1/monitoring/drift")
    assert body["status"] == "not measured" and body["reference"] is None


def test_model_metrics_match_their_schema(app, gated):
    from webapp.models import TrainingRun

    db.session.add(TrainingRun(trigger="labels", status="succeeded", model_version=2, num_labels=12))
    db.session.commit()
    _promote_then_roll_back()
    body = _validated(app, "/api/v1/models/metrics")
    by_version = {row["version"]: row for row in body["versions"]}
    assert by_version[2]["per_class"] and by_version[3]["n"] is None  # v3 was never measured
    assert [event["kind"] for event in body["events"]] == ["promotion", "rollback"]
    assert [point["version"] for point in body["learning_curve"]] == [2]
