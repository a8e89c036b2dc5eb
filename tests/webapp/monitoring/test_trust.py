"""The trust meter: counts match the stored labels per class and site, Wilson intervals are scipy's,
the window drops old reviews, gold reads never count, and readiness says why, both ways."""

from __future__ import annotations

import pytest
from scipy.stats import binomtest

from tests.conftest import api_token, change_settings, login
from tests.webapp.monitoring import trust_seed as seed
from webapp.config import ReadinessRule
from webapp.extensions import db
from webapp.models import Label
from webapp.monitoring import trust


def _wilson(k: int, n: int) -> tuple[float, float]:
    interval = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return interval.low, interval.high


def _seed_known(app) -> None:
    """north: normal 8 of 10 agreed, pneumonia 3 of 5; south: normal 20 of 20. Plus what must not
    count: a review 100 days old, and a blind gold read."""
    seed.reviews(10, 8, "normal", site="north")
    seed.reviews(5, 3, "pneumonia", site="north")
    seed.reviews(20, 20, "normal", site="south", confidence=0.95)
    seed.review("doctor", "normal", "pneumonia", site="north", days_ago=100)
    gold = seed.image("north", is_gold=True)
    db.session.add(Label(image_id=gold.id, user_id=seed.user("doctor2").id, label="normal", channel="gold"))
    db.session.commit()


def _report(app, version=None):
    services = app.extensions["medal"]
    return trust.report(services.settings.trust, services.class_names, version)


def test_counts_and_intervals_match_the_stored_labels(app):
    _seed_known(app)
    found = _report(app)
    assert (found.overall.reviews, found.overall.agreed) == (35, 31)  # the 100-day-old one and the gold read left out
    classes = {s.label: s.agreement for s in found.classes}
    assert (classes["normal"].reviews, classes["normal"].agreed) == (30, 28)
    assert (classes["pneumonia"].reviews, classes["pneumonia"].agreed) == (5, 3)
    assert (classes["normal"].low, classes["normal"].high) == pytest.approx(_wilson(28, 30))
    assert (classes["pneumonia"].low, classes["pneumonia"].high) == pytest.approx(_wilson(3, 5))
    sites = {site.site: site for site in found.sites}
    assert sorted(sites) == ["north", "south"]
    north = {s.label: s.agreement for s in sites["north"].classes}
    assert (north["normal"].reviews, north["normal"].agreed, north["pneumonia"].agreed) == (10, 8, 3)
    assert (sites["north"].agreement.low, sites["north"].agreement.high) == pytest.approx(_wilson(11, 15))
    assert [s.label for s in sites["south"].classes] == ["normal"]
    assert sites["south"].agreement.rate == 1.0
    # confidence >= 0.9: only the 20 south reviews (0.95), all right
    assert (found.confident.reviews, found.confident.agreed) == (20, 20)
    assert found.versions == {1: 35}


def test_the_window_and_the_version_filter(app):
    _seed_known(app)
    seed.review("doctor", "normal", "normal", version=2, days_ago=0.5)
    db.session.commit()
    change_settings(app, {"trust": {"window_days": 200}})
    assert _report(app).overall.reviews == 37  # the 100-day-old review is inside a 200-day window
    change_settings(app, {"trust": {"window_days": 90}})
    assert _report(app).overall.reviews == 36
    only_v2 = _report(app, version=2)
    assert (only_v2.overall.reviews, only_v2.overall.agreed, only_v2.version) == (1, 1, 2)


def test_readiness_both_ways():
    good = trust.Agreement.of(312, 330)
    low, high = _wilson(312, 330)
    ready = trust.readiness(good, ReadinessRule(min_agreement=round(low, 2) - 0.01, min_count=50))
    assert ready.ready
    assert ready.why.startswith(f"330 reviews, agreement {312 / 330:.2f} [{low:.2f}, {high:.2f}]")
    assert ready.why.endswith(": ready")
    # a high rate is not enough when the lower bound misses the threshold
    short = trust.readiness(good, ReadinessRule(min_agreement=round(low, 2) + 0.01, min_count=50))
    assert not short.ready and "the lower bound is below" in short.why
    few = trust.readiness(trust.Agreement.of(12, 12), ReadinessRule(min_agreement=0.5, min_count=50))
    assert not few.ready and few.why == "only 12 reviews of the 50 needed"
    assert not trust.readiness(good, None).ready


def test_readiness_per_class_and_site_from_config(app):
    _seed_known(app)
    low_south, _ = _wilson(20, 20)
    change_settings(
        app,
        {"trust": {"ready_for_less_supervision": {"normal": {"min_agreement": low_south - 0.01, "min_count": 20}}}},
    )
    found = _report(app)
    normal = next(s for s in found.classes if s.label == "normal")
    assert _wilson(28, 30)[0] < low_south - 0.01  # 28 of 30 overall: its lower bound misses the bar
    assert not normal.readiness.ready and "the lower bound is below" in normal.readiness.why
    sites = {site.site: {s.label: s for s in site.classes} for site in found.sites}
    assert sites["south"]["normal"].readiness.ready
    assert sites["north"]["normal"].readiness.why == "only 10 reviews of the 20 needed"
    assert "no readiness rule" in sites["north"]["pneumonia"].readiness.why


def test_page_and_api_show_the_same_numbers(app):
    _seed_known(app)
    client = app.test_client()
    login(client, "doctor")  # doctors read it too: it tells them where the model has earned trust
    page = client.get("/trust")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Nothing is automated by this page" in text
    low, high = _wilson(28, 30)
    assert f'{28 / 30:.2f} <span class="muted">[{low:.2f}, {high:.2f}]' in text
    body = app.test_client().get("/api/v1/monitoring/trust", headers=api_token(app, "engineer")).get_json()
    by_class = {row["class"]: row for row in body["classes"]}
    assert (by_class["normal"]["reviews"], by_class["normal"]["agreed"]) == (30, 28)
    assert by_class["normal"]["low"] == pytest.approx(low)
    assert body["confident"] == {**body["confident"], "threshold": 0.9, "reviews": 20, "agreed": 20}
    assert {site["site"] for site in body["sites"]} == {"north", "south"}
    assert "automates nothing" in body["note"]
    assert client.get("/trust?version=abc").status_code == 400
