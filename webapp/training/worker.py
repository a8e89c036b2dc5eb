"""`medal worker`: the one process that owns the scheduler and does all background work."""

from __future__ import annotations

import fcntl
import logging
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from webapp.training import jobs

log = logging.getLogger(__name__)
RESTART_SECONDS = 10  # after the scheduler stopped on an error (a locked database), before it starts again


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


class Scheduler(BlockingScheduler):
    """APScheduler's blocking scheduler, kept alive by its job store's errors. APScheduler retries a
    failed read of the due jobs itself, but an error while it writes a job's next run time (SQLite's
    "database is locked" after the busy timeout) ends its loop, and start() with it."""

    def _process_jobs(self):
        try:
            return super()._process_jobs()
        except Exception:
            log.exception(
                "the scheduler could not update its jobs; trying again in %.0f s", self.jobstore_retry_interval
            )
            return self.jobstore_retry_interval


def build_scheduler(app: Flask) -> Scheduler:
    cfg = app.extensions["medal"].settings.scheduler
    # the app database's engine options: on SQLite its WAL and busy timeout, so the scheduler's own
    # writes queue behind a long one instead of failing with "database is locked" (retried if they do)
    store = SQLAlchemyJobStore(
        url=app.config["SQLALCHEMY_DATABASE_URI"],
        tablename="scheduler_jobs",
        engine_options=app.config["SQLALCHEMY_ENGINE_OPTIONS"],
    )
    scheduler = Scheduler(jobstores={"default": store}, timezone="UTC")
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
        "webapp.monitoring.drift:job",
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
    """Recover, then schedule until SIGTERM or SIGINT. A failure on the way (the database locked past
    its busy timeout, at start or later) is logged with its reason and the worker starts over after
    RESTART_SECONDS: it never ends on its own."""
    lock = hold_lock(app.config["MEDAL_HOME"])
    jobs.bind(app)
    from webapp.monitoring import exporter

    exporter.start(app)  # monitoring.worker_port (0 = off)
    stopping = threading.Event()
    current: list[Scheduler] = []

    def stop(*_) -> None:
        stopping.set()
        if current:  # from another thread: this handler may have interrupted one holding the scheduler's locks
            threading.Thread(target=_shut_down, args=(current[-1], False), name="worker-stop").start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping.is_set():
            try:
                _recover(app)
                scheduler = build_scheduler(app)
                current[:] = [scheduler]
                if stopping.is_set():  # asked to stop while it was being built
                    break
                log.info(
                    "worker started; checking every %s s", app.extensions["medal"].settings.scheduler.check_seconds
                )
                scheduler.start()
                if not stopping.is_set():
                    log.error("the scheduler stopped unasked; starting again in %s s", RESTART_SECONDS)
            except Exception as error:
                log.exception(
                    "the scheduler stopped or could not start (%s); starting again in %s s", error, RESTART_SECONDS
                )
            if current:
                _shut_down(current.pop(), wait=True)  # a job still running finishes before the next start
            stopping.wait(RESTART_SECONDS)
        log.info("worker stopped")
    finally:
        lock.close()


def _recover(app: Flask) -> None:
    with app.app_context():
        from webapp.approvals import recovery

        recovery.reconcile()  # finish an alias change a crash interrupted
        recovered = jobs.recover_interrupted()
        if recovered:
            log.warning("marked %d interrupted training run(s) failed", recovered)


def _shut_down(scheduler: Scheduler, wait: bool) -> None:
    try:
        scheduler.shutdown(wait=wait)
    except SchedulerNotRunningError:  # it failed before it ran
        pass
