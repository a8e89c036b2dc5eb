"""/metrics: Prometheus text from prometheus_client, parsed back with its parser; answered to allowed
addresses and admin tokens only; gauges read from the database; the worker's exporter on a port."""

from __future__ import annotations

import socket
import urllib.request
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import api_token, change_settings, user
from tests.webapp.monitoring import trust_seed as seed
from webapp.extensions import db
from webapp.models import Claim, QueryScore, TrainingRun, utcnow

ELSEWHERE = {"REMOTE_ADDR": "10.1.2.3"}


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples, name, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def _seed_state() -> list:
    """Four open pool images (one held, one scored by v1), one labeled, two training runs."""
    open_images = [seed.image() for _ in range(4)]
    seed.review("doctor", "normal", "normal")
    now = utcnow()
    db.session.add(Claim(image_id=open_images[0].id, user_id=user("doctor").id, expires_at=now + timedelta(minutes=2)))
    db.session.add(QueryScore(image_id=open_images[1].id, model_version=1, strategy="margin", score=0.4, rank=1))
    db.session.add(TrainingRun(trigger="cli", status="failed", started_at=now, finished_at=now))
    started = now - timedelta(seconds=95)
    db.session.add(TrainingRun(trigger="cli", status="succeeded", started_at=started, finished_at=now))
    db.session.commit()
    return open_images


def test_metrics_from_an_allowed_address(app, tiny):
    _seed_state()
    client = app.test_client()
    assert client.get("/api/v1/images/424242", headers=api_token(app, "doctor")).status_code == 404
    client.get("/no/such/page/7")
    response = client.get("/metrics")  # the test client's address is 127.0.0.1
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    samples = _samples(response.get_data(as_text=True))
    # latency by endpoint name, never by path: the id and the unmatched path are not labels
    assert _value(samples, "medal_http_request_duration_seconds_count", endpoint="api.get_image", method="GET") >= 1
    assert _value(samples, "medal_http_requests_total", endpoint="(unmatched)", method="GET", status="404") >= 1
    assert not any("424242" in str(labels) or "/no/such" in str(labels) for _, labels in samples)
    assert _value(samples, "medal_review_queue_size") == 4
    assert _value(samples, "medal_claims_held") == 1
    assert _value(samples, "medal_images_total", origin="import") == 5
    assert _value(samples, "medal_predictions_total") == 1
    assert _value(samples, "medal_training_runs", state="failed") == 1
    assert _value(samples, "medal_training_runs", state="running") == 0
    state = "medal_training_latest_run_state"
    assert _value(samples, state, **{state: "succeeded"}) == 1
    assert _value(samples, state, **{state: "failed"}) == 0
    assert _value(samples, "medal_training_latest_run_duration_seconds") == 95
    assert _value(samples, "medal_serving_model_version") == 1  # the tiny fixture's champion
    assert _value(samples, "medal_scoring_lag_images") == 3  # four open, one scored by v1
    assert _value(samples, "medal_database_up") == 1


def test_refused_elsewhere_unless_an_admin_token(app):
    client = app.test_client()
    refused = client.get("/metrics", environ_base=ELSEWHERE)
    assert refused.status_code == 403
    assert b"medal_" not in refused.data
    doctor = client.get("/metrics", environ_base=ELSEWHERE, headers=api_token(app, "doctor"))
    assert doctor.status_code == 403
    admin = client.get("/metrics", environ_base=ELSEWHERE, headers=api_token(app, "admin"))
    assert admin.status_code == 200
    assert ("medal_review_queue_size", ()) in _samples(admin.get_data(as_text=True))


def test_allowed_networks_come_from_config(app):
    change_settings(app, {"monitoring": {"metrics_allowed": ["10.0.0.0/8"]}})
    client = app.test_client()
    assert client.get("/metrics", environ_base=ELSEWHERE).status_code == 200
    assert client.get("/metrics").status_code == 403  # 127.0.0.1 is no longer listed
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::ffff:10.9.9.9"}).status_code == 200


def test_behind_the_proxy_the_address_is_the_forwarded_one(home, monkeypatch):
    monkeypatch.setenv("MEDAL_SECURITY__PROXY_HOPS", "1")
    from tests.conftest import _make_app

    for app in _make_app():
        client = app.test_client()
        # the proxy itself is local; the client it forwards for is not
        forwarded = {"X-Forwarded-For": "203.0.113.9"}
        assert client.get("/metrics", headers=forwarded).status_code == 403
        assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_workers_exporter_serves_on_a_port(app):
    from webapp.monitoring import exporter

    _seed_state()
    assert exporter.start(app, port=0) is None  # 0 = off
    server, thread = exporter.start(app, port=_free_port())
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    samples = _samples(text)
    assert _value(samples, "medal_review_queue_size") == 4
    assert _value(samples, "medal_training_latest_run_duration_seconds") == 95


def test_a_taken_metrics_port_leaves_the_worker_working(app, caplog):
    """Two workers on one host (two data homes): the second gets no metrics port, and says so,
    instead of stopping."""
    from webapp.monitoring import exporter

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert exporter.start(app, port=taken.getsockname()[1], host="127.0.0.1") is None
    assert "worker metrics not served" in caplog.text
