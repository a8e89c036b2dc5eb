"""Watching the platform at work. For engineers and doctors: the trust meter (trust), labelling activity
(activity) and drift by site, age band and sex (drift, with its worker job and `medal drift`), each with
its page (views). For the hospital's IT team, Prometheus: request latency hooks, gauges read from the
database at scrape time (metrics), GET /metrics for the web processes and an exporter for the worker."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Time every request, and serve /metrics and the monitoring pages."""
    from webapp.monitoring import metrics
    from webapp.monitoring.views import bp

    metrics.install_hooks(app)
    app.register_blueprint(bp)
