"""`medal worker`: the one process that owns the scheduler and does all background work."""

from __future__ import annotations

import fcntl
import logging
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from webapp.training import jobs

log = logging.getLogger(__name__)


class WorkerAlreadyRunning(RuntimeError):
    pass


def hold_lock(home: str):
    """One worker per MEDAL_HOME: two schedulers would train the same labels twice."""
    handle = open(Path(home) / "worker.lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise WorkerAlreadyRunning(f"Another worker is running on {home}.") from None
    return handle


def build_scheduler(app: Flask) -> BlockingScheduler:
    cfg = app.extensions["medal"].settings.scheduler
    # the app database's engine options: on SQLite its WAL and busy timeout, so the scheduler's own
    # writes queue behind a long one instead of failing with "database is locked" (which stops it)
    store = SQLAlchemyJobStore(
        url=app.config["SQLALCHEMY_DATABASE_URI"],
        tablename="scheduler_jobs",
        engine_options=app.config["SQLALCHEMY_ENGINE_OPTIONS"],
    )
    scheduler = BlockingScheduler(jobstores={"default": store}, timezone="UTC")
    # one run of a job at a time, and missed runs collapse into one: a long fine-tune never
    # stacks up ticks behind it
    once = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300, "replace_existing": True}
    scheduler.add_job(
        "webapp.training.jobs:tick",
        "interval",
        seconds=cfg.check_seconds,
        id="tick",
        next_run_time=datetime.now(UTC),
        **once,
    )  # first pass at once
    scheduler.add_job("webapp.training.jobs:cleanup", "interval", hours=6, id="cleanup", **once)
    drift = app.extensions["medal"].settings.drift
    scheduler.add_job(  # a first pass soon after start, so a new site's drift shows within minutes
        "webapp.reports.drift:job",
        "interval",
        minutes=drift.interval_minutes,
        id="drift",
        next_run_time=datetime.now(UTC) + timedelta(minutes=2),
        **once,
    )
    clinical = app.extensions["medal"].settings.clinical  # does nothing while no study has clinical data
    scheduler.add_job(
        "webapp.clinical.fusion:job", "interval", minutes=clinical.interval_minutes, id="clinical_fit", **once
    )
    pacs = app.extensions["medal"].settings.pacs
    if pacs.url:  # a stored job left from an earlier configuration finds the url empty and does nothing
        scheduler.add_job(
            "webapp.training.jobs:pacs_pull", "interval", minutes=pacs.interval_minutes, id="pacs_pull", **once
        )
    return scheduler


def run(app: Flask) -> None:
    lock = hold_lock(app.config["MEDAL_HOME"])
    jobs.bind(app)
    with app.app_context():
        from webapp.approvals import recovery

        recovery.reconcile()  # finish an alias change a crash interrupted
        recovered = jobs.recover_interrupted()
        if recovered:
            log.warning("marked %d interrupted training run(s) failed", recovered)
    scheduler = build_scheduler(app)
    from webapp.monitoring import exporter

    exporter.start(app)  # monitoring.worker_port (0 = off)
    signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
    log.info("worker started; checking every %s s", app.extensions["medal"].settings.scheduler.check_seconds)
    try:
        scheduler.start()
    finally:
        lock.close()
