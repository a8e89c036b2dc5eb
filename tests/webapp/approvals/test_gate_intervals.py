"""The gate's intervals where an engineer reads them: the stored report, the approvals page and the API."""

import json

import jsonschema_rs
import pytest
from markupsafe import escape

from tests.conftest import api_token, change_settings, login, seed_gold
from webapp.approvals import gate_run
from webapp.extensions import db
from webapp.models import Image


def test_the_gate_report_holds_the_paired_bootstrap_by_patient(app, gated):
    ids = seed_gold(8, seed=31)
    for position, image_id in enumerate(ids):
        db.session.get(Image, image_id).patient_key = f"patient-{position // 2}"  # two films each
    db.session.commit()
    change_settings(app, {"gate": {"bootstrap_resamples": 500, "confidence": 0.9}})
    report = gate_run.run_gate(2)
    comparison = report.result["comparison"]
    assert (comparison["n"], comparison["patients"], comparison["unit"]) == (16, 12, "patient")
    assert (comparison["resamples"], comparison["confidence"]) == (500, 0.9)
    accuracy = comparison["metrics"]["accuracy"]
    assert accuracy["candidate"]["value"] == report.candidate_metrics["accuracy"]
    assert accuracy["champion"]["value"] == report.champion_metrics["accuracy"]
    low, high = accuracy["difference"]["low"], accuracy["difference"]["high"]
    assert low <= accuracy["difference"]["value"] <= high
    right_only = sum(1 for f in report.flipped if f["candidate"] == f["gold"])
    wrong_only = sum(1 for f in report.flipped if f["champion"] == f["gold"])
    assert accuracy["discordant"] == [right_only, wrong_only]
    assert report.result["better"] in (True, False) and report.result["better_reason"]


def test_the_page_shows_each_figure_with_its_interval_and_the_change_with_its_own(app, gated):
    report = gate_run.latest_report(2)
    accuracy = report.result["comparison"]["metrics"]["accuracy"]
    client = app.test_client()
    login(client, "engineer")
    page = client.get("/approvals").get_data(as_text=True)
    mine, change = accuracy["candidate"], accuracy["difference"]
    assert f'{mine["value"]:.3f} <span class="muted">[{mine["low"]:.2f}, {mine["high"]:.2f}]</span>' in page
    assert f"[{change['low']:+.3f}, {change['high']:+.3f}]" in page
    assert "95 % paired bootstrap, 2,000 resamples of the 8 gold films" in page
    few = report.result["few_gold"]  # eight gold films: every class has few
    for words in [report.result["better_reason"], *few]:  # as sentences: "Not shown better: macro AUC ..."
        assert f"{words[:1].upper()}{words[1:]}." in page
    assert few and "macro AUC" in report.result["better_reason"]


def _contract_schema(client, path: str, method: str) -> dict:
    spec = client.get("/api/v1/openapi.json").get_json()
    schema = spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    return {**schema, "components": spec["components"]}


def test_the_api_serves_the_gate_report_with_its_intervals_as_the_contract_says(app, gated):
    client = app.test_client()
    headers = api_token(app, "engineer")
    response = client.get("/api/v1/models/2/gate", headers=headers)
    assert response.status_code == 200, response.data
    body = json.loads(response.get_data(as_text=True))
    validator = jsonschema_rs.Draft202012Validator(_contract_schema(client, "/api/v1/models/{version}/gate", "get"))
    assert not [error.message for error in validator.iter_errors(body)]
    stored = gate_run.latest_report(2)
    assert body["comparison"] == stored.result["comparison"] and body["better"] == stored.result["better"]
    assert body["checks"] and all(check["message"] for check in body["checks"])
    rerun = client.post("/api/v1/models/2/gate", headers=headers)
    assert rerun.status_code == 200 and not list(validator.iter_errors(rerun.get_json()))
    assert rerun.get_json()["report_id"] == stored.id + 1
    models = client.get("/api/v1/models", headers=headers).get_json()
    assert next(v for v in models["versions"] if v["version"] == 2)["gate"]["better"] == body["better"]
    assert client.get("/api/v1/models/3/gate", headers=headers).status_code == 404  # never gated
    doctor = client.get("/api/v1/models/2/gate", headers=api_token(app, "doctor"))
    assert doctor.status_code == 403


TRADED = (
    "sensitivity_pneumonia fell to 0.500 [0.20, 0.80] from 1.000 [1.00, 1.00]: -0.500 [-0.80, -0.20], a change "
    "the interval confirms, but specificity for pneumonia rose by +0.500 [+0.20, +0.80]: the champion called "
    "pneumonia more often, not better (Youden's J 0.000 to 0.000): not blocking"
)
HANDED = (
    "sensitivity_pneumonia fell to 0.900 [0.85, 0.95] from 0.950 [0.91, 0.98]: -0.050 [-0.08, -0.01], a change "
    "the interval confirms, but the candidate calls 6 more pneumonia films normal, a class still being learned "
    "(4 of 10 adjudicated gold films), and finds more of normal (+0.250 [+0.00, +0.50]): not blocking"
)


@pytest.mark.parametrize(("status", "message"), [("traded", TRADED), ("handed", HANDED)])
def test_a_drop_the_gate_excuses_is_listed_with_the_gate_s_notes_tagged(app, gated, status, message):
    report = gate_run.latest_report(2)
    excused = {"rule": "max_drop", "metric": "sensitivity_pneumonia", "value": 0.5, "threshold": 0.97}
    excused |= {"passed": True, "message": message, "status": status}
    report.result = {**report.result, "checks": [*report.result["checks"], excused]}
    db.session.commit()
    client = app.test_client()
    login(client, "engineer")
    page = client.get("/approvals").get_data(as_text=True)
    assert f'<span class="tag">{status}</span> {message[:40]}' in page
    assert escape(message.split(", but ")[1]) in page
