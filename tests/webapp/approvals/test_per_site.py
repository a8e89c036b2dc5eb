"""Per-site metrics on a hand-made gold set of two sites."""

import numpy as np

from learning.metrics import evaluate
from tests.conftest import change_settings, seed_gold
from webapp import labelstore
from webapp.approvals import gate_run
from webapp.extensions import db
from webapp.models import Image


def test_the_gate_report_holds_the_metrics_of_each_site_with_enough_gold(app, gated):
    ids = seed_gold(10, seed=21)
    for position, image_id in enumerate(ids):
        db.session.get(Image, image_id).site = "site-a" if position < 6 else "site-b"
    db.session.commit()
    change_settings(app, {"gate": {"min_site_gold": 4}})
    report = gate_run.run_gate(2)
    per_site = report.candidate_metrics["per_site"]
    examples = labelstore.gold_examples(app.extensions["medal"].store)
    sites = {e.site for e in examples}
    assert {"site-a", "site-b"} <= set(per_site) and set(per_site) <= sites
    names = app.extensions["medal"].class_names
    predicted = gate_run.evaluate_version(2, examples)
    for site, found in per_site.items():
        members = [e for e in examples if e.site == site]
        assert found["n"] == len(members)
        truth = np.array([names.index(e.label) for e in members])
        right = sum(predicted.predicted[e.image_id] == e.label for e in members)
        assert found["accuracy"] == right / len(members)
        assert (
            found["confusion"]
            == evaluate(
                truth, np.eye(len(names))[[names.index(predicted.predicted[e.image_id]) for e in members]], names
            ).confusion
        )
    assert set(report.champion_metrics["per_site"]) == set(per_site)


def test_sites_below_the_minimum_are_left_out(app, gated):
    ids = seed_gold(4, seed=22)
    db.session.get(Image, ids[0]).site = "tiny-site"
    db.session.commit()
    change_settings(app, {"gate": {"min_site_gold": 5}})
    report = gate_run.run_gate(2)
    assert "tiny-site" not in report.candidate_metrics["per_site"]
