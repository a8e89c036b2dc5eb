"""The metrics: a request-latency histogram filled by request hooks, and a collector that reads the
queue, claims, training runs, the serving version and scoring lag from the database at scrape time.

Gauges come from the database rather than from process memory, so every web process and the worker
report the same truth. With PROMETHEUS_MULTIPROC_DIR set (several gunicorn workers), the histogram
and counters live in files in that folder and a scrape of any process sums them all (prometheus_client's
multiprocess mode); without it each process reports its own requests."""

from __future__ import annotations

import logging
import os
import time

from flask import Flask, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, StateSetMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
RUN_STATES = ("queued", "running", "succeeded", "failed")
_STARTED = "medal.request_started"  # key in the WSGI environ (g outlives a request in tests)

REQUEST_LATENCY = Histogram(
    "medal_http_request_duration_seconds",
    "Time to answer a request, by Flask endpoint (never the raw path) and method.",
    ["endpoint", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
REQUESTS = Counter(
    "medal_http_requests",
    "Requests answered, by Flask endpoint, method and status code.",
    ["endpoint", "method", "status"],
)


def endpoint_label() -> str:
    # an unmatched URL has no endpoint: one label for all of them, so paths never become labels
    return request.endpoint or "(unmatched)"


def _start() -> None:
    request.environ[_STARTED] = time.perf_counter()


def _finish(response):
    started = request.environ.get(_STARTED)
    if started is not None:
        endpoint = endpoint_label()
        REQUEST_LATENCY.labels(endpoint, request.method).observe(time.perf_counter() - started)
        REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
    return response


def install_hooks(app: Flask) -> None:
    # first of all before_request hooks: requests the access table refuses are timed too
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)


class DatabaseCollector(Collector):
    """Gauges computed from the database at each scrape, in an app context of its own."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        up = GaugeMetricFamily("medal_database_up", "Whether the database answered this scrape.", 1)
        with self.app.app_context():
            try:
                families = list(self._collect())  # all or nothing: no half-read scrape
            except Exception:  # noqa: BLE001 - a database outage must not break the process metrics
                log.exception("database metrics could not be read")
                families = []
                up = GaugeMetricFamily("medal_database_up", "Whether the database answered this scrape.", 0)
        yield from families
        yield up

    def _collect(self):
        from webapp.extensions import db
        from webapp.models import Image, Label, Prediction, QueryScore, TrainingRun, utcnow
        from webapp.monitoring.activity import claims_held, queue_size
        from webapp.services import services

        images = CounterMetricFamily("medal_images", "Images stored, by how they came in.", labels=["origin"])
        for origin, count in db.session.execute(db.select(Image.origin, db.func.count()).group_by(Image.origin)):
            images.add_metric([origin], count)
        yield images
        predictions = db.session.execute(db.select(db.func.count()).select_from(Prediction)).scalar_one()
        yield CounterMetricFamily("medal_predictions", "Predictions made by any model version.", predictions)
        yield GaugeMetricFamily("medal_review_queue_size", "Pool images awaiting a review label.", queue_size())
        yield GaugeMetricFamily("medal_claims_held", "Images served to a doctor and not yet answered.", claims_held())

        runs = GaugeMetricFamily("medal_training_runs", "Training runs by state.", labels=["state"])
        found = dict(
            db.session.execute(db.select(TrainingRun.status, db.func.count()).group_by(TrainingRun.status)).all()
        )
        for state in sorted(set(RUN_STATES) | set(found)):
            runs.add_metric([state], found.get(state, 0))
        yield runs
        latest = db.session.execute(
            db.select(TrainingRun).order_by(TrainingRun.id.desc()).limit(1)
        ).scalar_one_or_none()
        if latest is not None:
            state = StateSetMetricFamily("medal_training_latest_run_state", "The state of the latest training run.")
            state.add_metric([], {name: latest.status == name for name in sorted(set(RUN_STATES) | {latest.status})})
            yield state
            if latest.started_at is not None:
                end = latest.finished_at or utcnow()
                yield GaugeMetricFamily(
                    "medal_training_latest_run_duration_seconds",
                    "How long the latest training run ran (so far, while it runs).",
                    (end - latest.started_at).total_seconds(),
                )

        try:
            version = services().registry.version_for("champion")
        except Exception:  # noqa: BLE001 - the registry down: the other gauges still stand
            log.warning("the registry did not answer; no serving version in this scrape")
            version = None
        if version is not None:
            yield GaugeMetricFamily("medal_serving_model_version", "The champion model version being served.", version)
            scored = db.select(QueryScore.image_id).where(QueryScore.model_version == version)
            labeled = db.select(Label.image_id)
            lag = db.session.execute(
                db.select(db.func.count())
                .select_from(Image)
                .where(Image.split == "pool", Image.is_gold.is_(False), Image.id.not_in(labeled))
                .where(Image.id.not_in(scored))
            ).scalar_one()
            yield GaugeMetricFamily(
                "medal_scoring_lag_images", "Pool images awaiting review not yet scored by the champion.", lag
            )
        db.session.rollback()  # read only: end the transaction


class _ThisProcess(Collector):
    """The process-wide default registry (request metrics, process and Python metrics)."""

    def collect(self):
        yield from REGISTRY.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


def scrape_registry(app: Flask) -> CollectorRegistry:
    """What one scrape shows: request metrics (summed over processes in multiprocess mode) and the
    database gauges."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseCollector(app))
    return registry
