"""The worker's metrics: prometheus_client's own HTTP server on monitoring.worker_port (0 = off)."""

from __future__ import annotations

import logging

from flask import Flask
from prometheus_client import start_http_server

from webapp.monitoring.metrics import scrape_registry

log = logging.getLogger(__name__)


def start(app: Flask, port: int | None = None, host: str | None = None):
    """Serve the worker's metrics in a daemon thread; returns (server, thread), or None when off."""
    settings = app.extensions["medal"].settings.monitoring
    port = settings.worker_port if port is None else port
    host = settings.worker_host if host is None else host
    if port == 0:
        return None
    try:
        found = start_http_server(port, addr=host, registry=scrape_registry(app))
    except OSError as error:  # the port is taken (another worker on this host): the worker works on without it
        log.error("worker metrics not served on %s:%s: %s", host, port, error)
        return None
    log.info("worker metrics on http://%s:%s/metrics", host, found[0].server_port)
    return found
