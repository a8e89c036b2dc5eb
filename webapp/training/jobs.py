"""Background work owned by the worker: training triggers, queued runs, pool scoring, the next round's
activations, clean-up."""

from __future__ import annotations

import logging
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask
from flask.ctx import AppContext

from registry import aliases
from registry.uris import CANDIDATE, CHAMPION
from webapp import audit, labelstore
from webapp.config import SchedulerSettings
from webapp.extensions import db, rows_changed
from webapp.inference import scoring, threads
from webapp.models import AuditEvent, Claim, GateReport, QueryScore, TrainingRun, utcnow
from webapp.processes import hostname, same_process_alive
from webapp.services import services
from webapp.training import recipe, runs

log = logging.getLogger(__name__)
_app: Flask | None = None  # set by the worker; jobs are stored by reference and push its context


def bind(app: Flask) -> None:
    global _app
    _app = app


def cpu_work() -> AbstractContextManager[None]:
    """The turn on the cores every CPU-heavy job of the worker takes (webapp.inference.threads.cpu_turn),
    shared with the medal commands run by hand."""
    return threads.cpu_turn(_bound().extensions["medal"].settings.home)


def app_context() -> AppContext:
    """The app context every scheduled job runs in (`with jobs.app_context(): ...`). APScheduler stores
    a job as "module:function", so a job cannot be handed the app: it finds the one the worker bound."""
    return _bound().app_context()


def _bound() -> Flask:
    if _app is None:
        raise RuntimeError("No app is bound: the worker binds one (jobs.bind) before it runs a job.")
    return _app


@dataclass(frozen=True)
class TriggerState:
    new_labels: int  # since the last successful run started (all labels before the first)
    minutes_since_last_run: float | None  # None: no run has succeeded yet
    minutes_waiting: float | None  # since the first of the new labels arrived; None without one
    plateaued: bool


def trigger_reason(state: TriggerState, cfg: SchedulerSettings) -> str | None:
    """Pure: why a fine-tune should start now, or None. `min_new_labels` new labels start one at once;
    after the first run, so does a new label that has waited `train_interval_minutes` (the interval
    counts from it, not from the last run, so one label after a quiet week does not start one at
    once). Before the first run only the label count does: a new site's first label does not start a
    full fine-tune (and without a champion, a model of a handful of labels would serve unchecked)."""
    if state.plateaued or state.new_labels == 0:
        return None
    if state.new_labels >= cfg.min_new_labels:
        return "labels"
    if state.minutes_since_last_run is None or state.minutes_waiting is None:
        return None
    if state.minutes_waiting >= cfg.train_interval_minutes:
        return "interval"
    return None


def plateaued(improvements: list[float], runs: int, min_delta: float) -> bool:
    """Pure: the last `runs` finished runs each improved the tracked metric by less than min_delta."""
    if runs <= 0 or len(improvements) < runs:
        return False
    return all(delta < min_delta for delta in improvements[-runs:])


def run_improvements() -> list[float]:
    """Per finished run (oldest first): candidate minus champion on the gold set when the gate
    measured it, otherwise the run's validation AUC minus its parent's."""
    runs = (
        db.session.execute(
            db.select(TrainingRun)
            .where(TrainingRun.status == "succeeded", TrainingRun.parent_version.is_not(None))
            .order_by(TrainingRun.id)
        )
        .scalars()
        .all()
    )
    by_version = {
        run.model_version: run
        for run in db.session.execute(db.select(TrainingRun).where(TrainingRun.model_version.is_not(None))).scalars()
    }
    deltas = []
    for run in runs:
        gold = (run.metrics or {}).get("gold_macro_auc_delta")
        if gold is not None:
            deltas.append(float(gold))
            continue
        parent = by_version.get(run.parent_version)
        mine = (run.metrics or {}).get("best_val_auc")
        theirs = (parent.metrics or {}).get("best_val_auc") if parent else None
        if mine is not None and theirs is not None:
            deltas.append(float(mine) - float(theirs))
    return deltas


def current_trigger_state(now: datetime | None = None) -> TriggerState:
    now = now or utcnow()
    cfg = services().settings.scheduler
    last = db.session.execute(
        db.select(TrainingRun).where(TrainingRun.status == "succeeded").order_by(TrainingRun.id.desc()).limit(1)
    ).scalar_one_or_none()
    new_labels, first_new = labelstore.labels_since(last.started_at if last else None)

    def minutes_since(moment: datetime | None) -> float | None:
        return max(0.0, (now - moment).total_seconds() / 60) if moment is not None else None

    return TriggerState(
        new_labels=new_labels,
        minutes_since_last_run=minutes_since(last.finished_at if last else None),
        minutes_waiting=minutes_since(first_new),
        plateaued=plateaued(run_improvements(), cfg.plateau_runs, cfg.plateau_min_delta),
    )


def interrupted_because(run: TrainingRun, now: datetime | None = None) -> str | None:
    """Why a 'running' run has no live owner, or None while it may still have one. Its lease decides
    across hosts; on this host the owner's pid *and* start time must match, since pids get reused."""
    now = now or utcnow()
    if run.lease_expires_at is not None and run.lease_expires_at < now:
        return "its lease expired"
    if run.worker_pid is None:
        return "no worker recorded"
    if run.worker_host not in (None, hostname()):
        return None  # another machine's worker, its lease still running
    if run.worker_pid == os.getpid() and run.worker_started_at is None:
        return "this process restarted"
    if not same_process_alive(run.worker_pid, run.worker_started_at):
        return "its worker process is gone"
    return None


def recover_interrupted() -> int:
    """Runs left 'running' by a worker that died are marked failed, with a recovery entry in the
    history; a version it registered before dying never stays candidate without a gate report."""
    running = db.session.execute(db.select(TrainingRun).where(TrainingRun.status == "running")).scalars().all()
    recovered = 0
    for run in running:
        why = interrupted_because(run)
        if why is None:
            continue
        versions = _versions_of(run.id)
        run.status, run.finished_at, run.lease_expires_at = "failed", utcnow(), None
        run.progress = dict(run.progress or {}, stage="failed")
        run.error = f"The worker stopped during this run (killed or crashed; {why}); " + (
            f"version {versions[-1]} was registered but not kept as candidate."
            if versions
            else "nothing was registered."
        )
        if versions and run.model_version is None:
            run.model_version = versions[-1]
        for version in versions:
            _settle_orphan(version)
        if run.mlflow_run_id:
            services().registry.client.set_terminated(run.mlflow_run_id, "FAILED")
        audit.record(
            audit.Kind.RECOVERY,
            None,
            reason=f"Training run {run.id} was interrupted: {why}.",
            model_version=versions[-1] if versions else None,
            details={"training_run": run.id, "worker_pid": run.worker_pid, "worker_host": run.worker_host, "why": why},
            automatic=True,
        )
        db.session.commit()
        recovered += 1
    return recovered


def _versions_of(run_id: int) -> list[int]:
    return sorted(
        info.version for info in services().registry.versions() if info.tags.get("training_run") == str(run_id)
    )


def _settle_orphan(version: int) -> None:
    """A version whose run died: a candidate alias without a gate report is taken back; a champion the
    first-model bootstrap set without its history entry gets the entry, so aliases and history agree."""
    registry = services().registry
    registry.set_tags(version, {"training_run_failed": True})
    gated = db.session.execute(db.select(GateReport.id).filter_by(model_version=version).limit(1)).first()
    if not gated:
        aliases.clear_if(registry, CANDIDATE, version)
    if registry.version_for(CHAMPION) == version:
        recorded = db.session.execute(
            db.select(AuditEvent.id).filter_by(kind="promotion", model_version=version).limit(1)
        ).first()
        if not recorded:
            audit.record(
                audit.Kind.PROMOTION,
                None,
                reason="First model: no champion to compare with (recorded by crash recovery).",
                model_version=version,
                details={"bootstrap": True, "recovered": True},
                automatic=True,
            )


def needs_scoring() -> int | None:
    """The champion version when its pool scores are missing."""
    version = services().registry.version_for(CHAMPION)
    if version is None or not labelstore.pool_images(services().store):
        return None
    scored = db.session.execute(db.select(QueryScore.id).filter_by(model_version=version).limit(1)).first()
    return None if scored else version


def due_kind(now: datetime | None = None) -> str:
    """A round, unless the deeper full fine-tune is due: scheduler.full_interval_hours since the last
    full one (or, before any, since the first run finished)."""
    hours = services().settings.scheduler.full_interval_hours
    if hours is None:
        return "round"
    succeeded = db.select(TrainingRun).where(TrainingRun.status == "succeeded", TrainingRun.finished_at.is_not(None))
    last_full = db.session.execute(
        succeeded.where(TrainingRun.kind == "full").order_by(TrainingRun.finished_at.desc()).limit(1)
    ).scalar_one_or_none()
    since = last_full or db.session.execute(succeeded.order_by(TrainingRun.finished_at).limit(1)).scalar_one_or_none()
    if since is None:
        return "round"
    return "full" if (now or utcnow()) - since.finished_at >= timedelta(hours=hours) else "round"


def tick() -> dict:
    """One pass of the worker: enqueue on a trigger, run what is queued, re-score after a change."""
    with cpu_work(), app_context():
        done: dict = {}
        recovered = recover_interrupted()  # a `medal train` killed meanwhile must not block the queue
        if recovered:
            done["recovered"] = recovered
        reason = trigger_reason(current_trigger_state(), services().settings.scheduler)
        if reason:
            done["enqueued"] = runs.enqueue(reason, kind=due_kind()).id
        queued = db.session.execute(
            db.select(TrainingRun).filter_by(status="queued").order_by(TrainingRun.id).limit(1)
        ).scalar_one_or_none()
        if queued is not None:
            try:
                run = runs.run(queued)
                done["trained"] = {"run": run.id, "status": run.status, "version": run.model_version}
            except runs.RunTaken:  # `medal train` claimed it a moment earlier and runs it
                done["taken"] = queued.id
        version = needs_scoring()
        if version is not None:
            done["scored"] = scoring.score(version)
        elif "trained" not in done:  # a quiet check: ready the next round's activations
            warmed = warm_next_round()
            if warmed:
                done["warmed"] = warmed
        return done


def warm_next_round() -> int:
    """The trunk activations of the films the next round trains on, and then of the gold films its
    gate reads, a few per check (recipe.warm_activations). The films are today's training set: the
    doctors' labels so far and the replay sample, which stays the same from round to round."""
    settings, store = services().settings, services().store
    examples, _ = runs.training_set(settings)
    paths = [example.path for example in (*examples, *labelstore.gold_examples(store))]
    try:
        warmed = recipe.warm_activations(settings, services().registry, paths)
    except (OSError, ValueError):  # a film gone or unreadable: the round names it; the check goes on
        log.warning("could not compute the next round's trunk activations", exc_info=True)
        return 0
    if warmed:
        log.info("computed the trunk activations of %d films for the next round", warmed)
    return warmed


def pacs_pull() -> dict:
    """The scheduled PACS pull (pacs.url set): an unreachable PACS is a warning, retried next interval."""
    from webapp.integration import pacs

    with cpu_work(), app_context():
        if not services().settings.pacs.url:
            return {"pacs": "off"}
        try:
            return pacs.pull().as_dict()
        except pacs.PacsError as error:
            log.warning("PACS pull failed: %s", error)
            return {"error": str(error)}


def cleanup() -> dict:
    with app_context():
        claims = rows_changed(db.delete(Claim).where(Claim.expires_at < utcnow()))
        champion = services().registry.version_for(CHAMPION)
        old = (
            rows_changed(
                db.delete(QueryScore).where(
                    QueryScore.model_version != champion, QueryScore.created_at < utcnow() - timedelta(days=7)
                )
            )
            if champion
            else 0
        )
        db.session.commit()
        # activations of trunks no aliased version has: the next round and a rollback never read them
        pruned = recipe.prune_activations(services().settings, services().registry)
        return {"claims": claims, "old_scores": old, "activation_trunks": pruned}
