"""The model dashboard: every version's gold-set metrics, promotions and rollbacks marked on the
charts, two versions compared from their stored per-image gold probabilities, the JSON for scripts."""

import base64
import re

import pytest

from tests.conftest import api_token, login, user
from webapp.approvals import decisions
from webapp.extensions import db
from webapp.models import GateReport, GoldItem, GoldScore


def _svgs(page: str) -> list[str]:
    """The SVG text of every chart a page shows as a data: image."""
    return [base64.b64decode(m).decode() for m in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)]


def _promote_then_roll_back() -> None:
    decisions.decide(2, user("engineer"), approve=True, reason="better on gold", override=True)
    decisions.rollback(user("engineer"), "misses on ward 3")


def test_the_gate_stores_each_versions_probabilities_per_gold_image(app, gated):
    gold = dict(db.session.execute(db.select(GoldItem.image_id, GoldItem.final_label)).all())
    report = db.session.execute(db.select(GateReport)).scalar_one()
    for version in (1, 2):  # the candidate and the champion it was compared with
        rows = db.session.execute(db.select(GoldScore).filter_by(model_version=version)).scalars().all()
        assert {r.image_id: r.true_label for r in rows} == gold
        assert {r.snapshot_id for r in rows} == {report.snapshot_id}
        for row in rows:
            assert sum(row.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    # the same version gated again on the same frozen snapshot adds no second copy
    from webapp.approvals import gate_run

    gate_run.run_gate(2)
    assert db.session.scalar(db.select(db.func.count(GoldScore.id)).filter_by(model_version=2)) == len(gold)


def test_dashboard_lists_every_version_with_its_gold_metrics_and_marks_changes(app, gated):
    _promote_then_roll_back()
    client = app.test_client()
    login(client, "engineer")
    page = client.get("/dashboard").get_data(as_text=True)
    metrics = db.session.execute(db.select(GateReport)).scalar_one().candidate_metrics
    assert 'data-version="1"' in page and 'data-version="2"' in page and 'data-version="3"' in page
    assert "not measured on the gold set yet" in page  # v3 never went through the gate
    for value in (metrics["accuracy"], metrics["ece"]):
        assert f"{value:.3f}" in page
    first_class = next(iter(metrics["per_class"]))
    assert f"{metrics['per_class'][first_class]['specificity']:.3f}" in page
    assert "v2 promoted by engineer" in page and "v2 rolled back to v1 by engineer: misses on ward 3" in page
    charts = _svgs(page)
    assert len(charts) == 5  # overall, sensitivity, specificity, precision, F1 (no training runs: no learning curve)
    assert all("promoted" in svg and "rolled back" in svg for svg in charts)
    assert "Specificity per class" in "".join(charts)
    assert "No version trained from doctor labels" in page


def test_metrics_json_for_scripts(app, gated):
    _promote_then_roll_back()
    client = app.test_client()
    body = client.get("/api/v1/models/metrics", headers=api_token(app, "engineer")).get_json()
    report = db.session.execute(db.select(GateReport)).scalar_one()
    by_version = {v["version"]: v for v in body["versions"]}
    assert set(by_version) == {1, 2, 3}
    v2 = by_version[2]
    assert v2["overall"]["accuracy"] == report.candidate_metrics["accuracy"]
    name, values = next(iter(report.candidate_metrics["per_class"].items()))
    assert v2["per_class"][name]["f1"] == values["f1"]
    assert v2["per_class"][name]["recall"] == values["sensitivity"]
    assert by_version[1]["role"] == "champion" and by_version[1]["scored_snapshots"] == [report.snapshot_id]
    assert by_version[3]["overall"]["accuracy"] is None
    assert [(e["kind"], e["marked_version"]) for e in body["events"]] == [("promotion", 2), ("rollback", 2)]
    assert client.get("/api/v1/models/metrics", headers=api_token(app, "doctor")).status_code == 403


def test_two_versions_compared_with_roc_reliability_and_confusion(app, gated):
    client = app.test_client()
    login(client, "engineer")
    response = client.get("/dashboard/compare?a=1&b=2")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "the same frozen gold set" in page
    charts = _svgs(page)
    rocs = [svg for svg in charts if "ROC:" in svg]
    assert rocs and all("v1 (AUC" in svg and "v2 (AUC" in svg for svg in rocs)
    assert any("Reliability on the gold set" in svg and "v1 (ECE" in svg for svg in charts)
    assert sum("True class (gold)" in svg for svg in charts) == 2  # one confusion matrix per version
    assert all("True positive rate (sensitivity)" in svg for svg in rocs)
    assert "before per-image gold scores were stored" not in page


def test_a_version_gated_before_scores_were_stored_is_said_so(app, gated):
    for row in db.session.execute(db.select(GoldScore).filter_by(model_version=1)).scalars():
        db.session.delete(row)
    db.session.commit()
    client = app.test_client()
    login(client, "engineer")
    page = client.get("/dashboard/compare?a=1&b=2").get_data(as_text=True)
    assert "v1 was measured before per-image gold scores were stored" in page
    # its confusion matrix comes from the gate report
    assert sum("True class (gold)" in svg for svg in _svgs(page)) == 2
    assert "v1 was measured before per-image scores were stored" in client.get("/dashboard").get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("a=1&b=99", 404, "There is no model version 99"),
        ("a=abc&b=2", 400, "must be a model version number"),
        ("a=1&b=1", 400, "two different versions"),
        ("b=2", 400, "Choose a model version"),
        ("a=99999999999999999999&b=1", 400, "must be a model version number"),
    ],
)
def test_compare_refuses_unknown_or_malformed_versions(app, gated, query, status, message):
    client = app.test_client()
    login(client, "engineer")
    response = client.get(f"/dashboard/compare?{query}")
    assert response.status_code == status
    assert message in response.get_data(as_text=True)


def test_doctors_may_not_open_the_dashboard(app, gated):
    client = app.test_client()
    login(client, "doctor")
    assert client.get("/dashboard").status_code == 403
    assert client.get("/dashboard/compare?a=1&b=2").status_code == 403
    assert "Dashboard" not in client.get("/upload").get_data(as_text=True)


def test_empty_registry_says_so(app):
    client = app.test_client()
    login(client, "engineer")
    assert "No model version is registered yet" in client.get("/dashboard").get_data(as_text=True)
