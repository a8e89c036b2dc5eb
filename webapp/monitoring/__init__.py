"""Operations metrics for the hospital's IT team (Prometheus): request latency hooks, gauges read from
the database at scrape time, GET /metrics for the web processes and an exporter for the worker."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Time every request and serve /metrics."""
    from webapp.monitoring import metrics
    from webapp.monitoring.views import bp

    metrics.install_hooks(app)
    app.register_blueprint(bp)
