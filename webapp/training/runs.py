"""One training run: labels from the database, a Lightning fine-tune, a new MLflow version."""

from __future__ import annotations

import logging
import os
import random
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from flask import current_app
from sqlalchemy.exc import IntegrityError, OperationalError

from learning.model import ModelSpec, adapt_head
from registry import aliases
from registry.client import RunRecord
from registry.uris import CHAMPION
from webapp import audit, labelstore
from webapp.approvals import decisions, gate_run
from webapp.classes import catalog
from webapp.config import Settings
from webapp.extensions import db, rows_changed
from webapp.models import TrainingRun, User, utcnow
from webapp.processes import hostname, pause_point, started_at
from webapp.services import services
from webapp.training import recipe

log = logging.getLogger(__name__)
SAVE_ATTEMPTS = 4  # a run's writes: tries at a database still locked after its busy timeout
ENQUEUE_ATTEMPTS = 5  # tries to queue a run: the run that won a race may finish before it is read
T = TypeVar("T")


def enqueue(trigger: str, user: User | None = None, kind: str = "round") -> TrainingRun:
    """Ask the worker for a run; a queued or running one already covers the request. The database
    holds that (index uq_training_run_one_active): of requests racing to queue one, one inserts and
    the others get its run."""
    for _ in range(ENQUEUE_ATTEMPTS):
        pending = (
            db.session.execute(
                db.select(TrainingRun).where(TrainingRun.status.in_(("queued", "running"))).order_by(TrainingRun.id)
            )
            .scalars()
            .first()
        )
        if pending is not None:
            return pending
        run = TrainingRun(trigger=trigger, kind=kind, requested_by=user, status="queued")
        db.session.add(run)
        try:
            db.session.commit()
            return run
        except IntegrityError as error:  # another request queued one a moment ago: the next read finds it
            db.session.rollback()
            lost = error
    raise RuntimeError(
        f"No training run queued in {ENQUEUE_ATTEMPTS} tries: each time another request queued one first."
    ) from lost


def training_set(settings: Settings) -> tuple[list[labelstore.Example], int]:
    """Every doctor label, plus a replay sample of earlier labeled data; never gold."""
    store, names = services().store, services().class_names
    doctor = labelstore.doctor_examples(store, names)
    doctor_ids = {example.image_id for example in doctor}
    earlier = [e for e in labelstore.imported_examples(store, names) if e.image_id not in doctor_ids]
    replay = settings.training.replay_samples
    has_champion = services().registry.version_for(CHAMPION) is not None
    if has_champion and len(earlier) > replay:
        # fine-tuning from the champion: a sample of what it learnt keeps it from forgetting
        earlier = replay_sample(earlier, replay, settings.training.seed)
    return doctor + earlier, len(doctor)


def replay_sample(earlier: list[labelstore.Example], size: int, seed: int) -> list[labelstore.Example]:
    """`size` earlier examples with every class in proportion to its share of them, and at least a
    few of each (a class with 3 % of the films still gets its 3 %, never zero by chance)."""
    rng = random.Random(seed)
    by_class: dict[str, list[labelstore.Example]] = {}
    for example in earlier:
        by_class.setdefault(example.label, []).append(example)
    floor = max(1, size // (10 * max(len(by_class), 1)))
    picked: list[labelstore.Example] = []
    for label in sorted(by_class):
        members = by_class[label]
        share = max(floor, round(size * len(members) / len(earlier)))
        picked.extend(rng.sample(members, min(share, len(members))))
    return picked


class RunTaken(Exception):
    """Another process claimed the run first: a run has one executor, ever."""

    def __init__(self, training: TrainingRun):
        self.training = training
        super().__init__(f"Training run {training.id} was already taken by another process (now {training.status}).")


class RunLease:
    """A running run's proof of life: an owner token, this process's host, pid and start time, and
    an expiry that a thread renews through its own connection while the run works. Recovery takes a
    run for dead when its lease ran out, or when its process (pid and start time) is gone from this
    host; a pid alone proves nothing, since pids get reused."""

    def __init__(self, run_id: int, seconds: int):
        self.run_id, self.seconds = run_id, seconds
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def claim(self) -> bool:
        """Queued -> running under this lease, in one statement that only one process can win."""
        claimed = rows_changed(
            db.update(TrainingRun)
            .where(TrainingRun.id == self.run_id, TrainingRun.status == "queued")
            .values(
                status="running",
                started_at=utcnow(),
                lease_token=self.token,
                worker_host=hostname(),
                worker_pid=os.getpid(),
                worker_started_at=started_at(),
                lease_expires_at=utcnow() + timedelta(seconds=self.seconds),
                progress={"stage": "preparing"},
                error=None,
            )
            .execution_options(synchronize_session=False)
        )
        return claimed == 1

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._renew, args=(db.engine, self.run_id), daemon=True, name="run-lease"
        )
        self._thread.start()

    def _renew(self, engine, run_id: int) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                with engine.begin() as connection:
                    connection.execute(
                        db.update(TrainingRun)
                        .where(TrainingRun.id == run_id, TrainingRun.lease_token == self.token)
                        .values(lease_expires_at=utcnow() + timedelta(seconds=self.seconds))
                    )
            except Exception:  # a busy database: the next beat tries again, well within the lease
                log.warning("could not renew the lease of training run %s", run_id, exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)


def _save(change: Callable[[], T], what: str) -> T:
    """Make `change` to the session and commit it; returns what `change` returned. On SQLite a writer
    that holds the lock past the busy timeout gives "database is locked"; the change is then made
    again and retried a few times, so a fine-tune of an hour is not lost to one busy moment."""
    for attempt in range(1, SAVE_ATTEMPTS):
        try:
            result = change()
            db.session.commit()
            return result
        except OperationalError:
            db.session.rollback()
            log.warning("could not save %s (try %d of %d); trying again", what, attempt, SAVE_ATTEMPTS, exc_info=True)
            time.sleep(attempt)
    result = change()  # the last try: its error goes to the caller
    db.session.commit()
    return result


def run(training: TrainingRun) -> TrainingRun:
    """Claim a queued run and execute it to the end; any failure is stored on the run, never lost.
    Raises RunTaken when another process (the worker, `medal train`) claimed it first. A crash (kill -9)
    leaves it running with a lease that stops being renewed; jobs.recover_interrupted() closes it."""
    settings = services().settings
    lease = RunLease(training.id, settings.scheduler.run_lease_seconds)
    claimed = _save(lease.claim, f"the claim of training run {training.id}")
    db.session.refresh(training)
    if not claimed:
        raise RunTaken(training)
    lease.start()
    try:
        _execute(training, settings)
        outcome: dict[str, Any] = {"status": "succeeded"}
    except Exception as error:  # the run is marked failed; the worker goes on
        db.session.rollback()
        log.exception("training run %s failed", training.id)
        outcome = {
            "status": "failed",
            "error": f"{type(error).__name__}: {error}",
            "progress": dict(training.progress or {}, stage="failed"),
        }
    finally:
        lease.stop()

    def finish() -> None:
        for name, value in outcome.items():
            setattr(training, name, value)
        training.finished_at, training.lease_expires_at = utcnow(), None

    _save(finish, f"the end of training run {training.id}")
    return training


def _execute(training: TrainingRun, settings: Settings) -> None:
    # the classes as they are now: one added during this run waits for the next run
    registry, names = services().registry, services().class_names
    cfg = settings.training
    examples, doctor_count = training_set(settings)
    if len(examples) < 10:
        raise ValueError(f"Only {len(examples)} labeled images; at least 10 are needed to train.")
    champion = registry.version_for(CHAMPION)
    init = registry.load(champion) if champion is not None else None
    teacher = init  # the champion as it is: its calls anchor the old classes in a round
    spec = ModelSpec(settings.model.backbone, names, settings.images.size, settings.model.dropout)
    if init is not None and init.spec.backbone != spec.backbone:
        init = None  # the configured backbone changed: train afresh
    elif init is not None and init.spec.class_names != names:
        # a class was added (or renamed): grow the head, keeping what it learnt for the others
        init = adapt_head(init, names, renamed=catalog.aliases())
    training.parent_version, training.num_labels, training.num_train = champion, doctor_count, len(examples)
    db.session.commit()

    def progress(update: dict) -> None:
        training.progress = dict(update, stage="training")
        try:
            db.session.commit()
        except OperationalError:  # the database is busy: the next update is saved instead; the fine-tune goes on
            db.session.rollback()
            log.warning("training run %s: progress not saved (database busy)", training.id, exc_info=True)
        pause_point("training:fitting")  # test hook: kill -9 mid fine-tune

    labeled = [e.labeled(names) for e in examples]
    trained = recipe.train(
        training.kind,
        settings,
        spec,
        doctor=labeled[:doctor_count],
        replay=labeled[doctor_count:],
        start=init,
        teacher=teacher,
        renamed=catalog.aliases(),
        progress=progress,
    )
    result = trained.result
    # the last report stays: its per-epoch history draws the run's curves on the Training page
    registering = dict(training.progress or {}, stage="registering", epoch=result.epochs_run)
    _save(lambda: setattr(training, "progress", registering), "the progress")

    final = {
        "best_val_auc": result.best_val_auc,
        "best_epoch": result.best_epoch,
        "kept_epochs": result.kept_epochs or [result.best_epoch],
        "epochs": result.epochs_run,
        "duration_s": round(result.duration_s, 1),
        "kind": trained.kind,
    }
    if trained.operating_point is not None:
        final["operating_point"] = trained.operating_point.to_dict()
    record = RunRecord(
        params={
            "backbone": spec.backbone,
            "image_size": spec.image_size,
            "classes": ",".join(names),
            "parent_version": champion,
            "train_size": result.train_size,
            "val_size": result.val_size,
            "doctor_labels": doctor_count,
            "trigger": training.trigger,
            "precision": result.precision,
            **trained.params,
            **{f"cfg_{k}": v for k, v in cfg.model_dump().items()},
        },
        metrics_by_epoch=result.history,
        final_metrics=final,
        manifest=[
            {"image_id": e.image_id, "sha256": e.sha256, "label": e.label, "label_id": e.label_id, "source": e.source}
            for e in examples
        ],
        tags={
            "code_version": code_version(),
            "training_run": training.id,
            "trigger": training.trigger,
            "parent_version": champion if champion is not None else "none",
        },
    )
    run_id = registry.log_run(result.net, record, run_name=f"train-{training.id}")
    version = registry.register(
        run_id, tags={"training_run": training.id, "parent_version": champion if champion is not None else "none"}
    )
    pause_point("training:registered")  # test hook: a version exists that the database does not know yet
    training.mlflow_run_id, training.model_version, training.metrics = run_id, version, final
    # saved before the gate measures two models on the gold set (minutes on a CPU): changes left
    # unsaved would hold SQLite's write lock all that time, against every other writer
    db.session.commit()
    if champion is None:
        bootstrap_champion(version)
    else:
        aliases.nominate(registry, version)
        decisions.on_candidate(version)  # the gate runs as soon as a candidate exists


def bootstrap_champion(version: int) -> None:
    """The very first model has nothing to be compared with: it serves, and the history says so.
    It is still measured on the gold set, so its numbers are known from the start."""
    report = gate_run.run_gate(version)
    report.decision = "bootstrap"
    aliases.bootstrap(services().registry, version)
    audit.record(
        audit.Kind.PROMOTION,
        audit.SYSTEM,
        model_version=version,
        reason="First model: no champion to compare with.",
        automatic=True,
        details={"bootstrap": True},
    )
    db.session.commit()


def code_version() -> str:
    try:
        root = current_app.root_path
        return (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or "unknown"
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
