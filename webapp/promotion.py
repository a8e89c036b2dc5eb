"""The validation gate on the gold set, engineer decisions, promotion, rollback and history."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from sqlalchemy import delete, func, insert, update
from sqlalchemy.exc import IntegrityError

from learning.metrics import confusion_matrix_figure, evaluate
from learning.predict import score_pool
from registry import promotion as aliases
from registry.gate import GatePolicy, auto_promotion_allowed, check
from registry.uris import CANDIDATE, CHAMPION
from webapp import labelstore
from webapp.extensions import db
from webapp.models import AuditEvent, GateReport, GoldSnapshot, Image, Label, Setting, TrainingRun, User, utcnow
from webapp.problems import Problem
from webapp.services import services

log = logging.getLogger(__name__)
RECENT_LABELS = 200   # labels that define "recent model-doctor agreement"


class DecisionError(Problem):
    """An approval, rejection or rollback that cannot be done as asked."""


@dataclass(frozen=True)
class Evaluation:
    report: dict                  # EvaluationReport.to_dict()
    predicted: dict[int, str]     # image id -> predicted class


# --- gold snapshot and evaluation ------------------------------------------------------------

def freeze_gold() -> tuple[GoldSnapshot, list[labelstore.Example]]:
    """The gold set as it is now, frozen: the same hash always names the same items."""
    examples = labelstore.gold_examples(services().store)
    items = sorted([example.image_id, example.label] for example in examples)
    digest = hashlib.sha256(json.dumps(items).encode()).hexdigest()
    find = db.select(GoldSnapshot).filter_by(content_hash=digest)
    snapshot = db.session.execute(find).scalar_one_or_none()
    if snapshot is None:
        db.session.add(GoldSnapshot(content_hash=digest, items=items, size=len(items)))
        try:
            db.session.commit()
        except IntegrityError:  # another gate run froze the same set a moment ago
            db.session.rollback()
        snapshot = db.session.execute(find).scalar_one()
    return snapshot, examples


def evaluate_version(version: int, examples: list[labelstore.Example]) -> Evaluation:
    names = services().class_names
    net = services().server.net_for(version) or services().registry.load(version)
    if not examples:
        return Evaluation(evaluate(np.zeros(0), np.zeros((0, len(names))), names).to_dict(), {})
    probabilities = score_pool(net, [example.path for example in examples]).probabilities
    truth = np.array([names.index(example.label) for example in examples])
    predicted = {example.image_id: names[int(i)] for example, i in zip(examples, probabilities.argmax(axis=1))}
    return Evaluation(evaluate(truth, probabilities, names).to_dict(), predicted)


def recent_agreement() -> float | None:
    """Share of the latest doctor labels (gold reads aside) that confirmed the model."""
    rows = db.session.execute(db.select(Label.agreed).join(Image, Image.id == Label.image_id)
                              .where(Label.agreed.is_not(None), Image.is_gold.is_(False))
                              .order_by(Label.id.desc()).limit(RECENT_LABELS)).scalars().all()
    return float(np.mean(rows)) if rows else None


# --- the gate ----------------------------------------------------------------------------------

def on_candidate(version: int) -> GateReport:
    """A new candidate: run the gate, then promote at once only if config allows and it qualifies."""
    report = run_gate(version)
    auto = services().settings["gate"].get("auto_promote", {})
    if auto.get("enabled"):
        allowed, why = auto_promotion_allowed(report.passed, report.candidate_metrics,
                                              report.champion_metrics, auto, recent_agreement())
        if allowed:
            try:
                decide(version, None, approve=True, reason=f"Automatic: {why}", automatic=True)
            except DecisionError as error:  # e.g. an engineer decided first: theirs stands
                log.warning("auto-promotion of version %s skipped: %s", version, error)
        else:
            log.info("version %s not auto-promoted: %s", version, why)
    return report


def run_gate(version: int) -> GateReport:
    """Evaluate `version` and the champion on one frozen gold snapshot and store the verdict."""
    settings, registry = services().settings, services().registry
    snapshot, examples = freeze_gold()
    champion = registry.version_for(CHAMPION)
    mine = evaluate_version(version, examples)
    theirs = evaluate_version(champion, examples) if champion is not None else None
    result = check(mine.report, theirs.report if theirs else None, GatePolicy.from_config(settings["gate"]),
                   snapshot.size)
    flipped = []
    if theirs is not None:
        gold = dict(map(tuple, snapshot.items))
        flipped = [{"image_id": image_id, "gold": gold[image_id], "champion": theirs.predicted[image_id],
                    "candidate": label} for image_id, label in mine.predicted.items()
                   if theirs.predicted.get(image_id) != label]
    report = GateReport(model_version=version, champion_version=champion, snapshot=snapshot,
                        passed=result.passed, result=result.to_dict(), candidate_metrics=mine.report,
                        champion_metrics=theirs.report if theirs else None, flipped=flipped)
    db.session.add(report)
    db.session.add(AuditEvent(kind="gate", actor_name="system", model_version=version, from_version=champion,
                              reason="passed" if result.passed else "; ".join(result.failures),
                              details={"snapshot": snapshot.content_hash, "gold_size": snapshot.size}))
    delta = _auc_delta(mine.report, theirs.report if theirs else None)
    run = db.session.execute(db.select(TrainingRun).filter_by(model_version=version)).scalar_one_or_none()
    if run is not None and delta is not None:
        run.metrics = dict(run.metrics or {}, gold_macro_auc_delta=delta)  # read by the plateau rule
    db.session.commit()
    _record_in_registry(version, report, mine)
    return report


def _auc_delta(mine: dict, theirs: dict | None) -> float | None:
    if theirs is None or mine.get("macro_auc") is None or theirs.get("macro_auc") is None:
        return None
    return float(mine["macro_auc"] - theirs["macro_auc"])


def _record_in_registry(version: int, report: GateReport, evaluation: Evaluation) -> None:
    registry, names = services().registry, services().class_names
    registry.set_tags(version, {"gate_passed": report.passed, "gold_snapshot": report.snapshot.content_hash,
                                "gate_report": report.id})
    if evaluation.report["n"] == 0:
        return  # an empty gold set measures nothing: log no numbers that look like measurements
    flat = {"accuracy": evaluation.report["accuracy"], "ece": evaluation.report["ece"],
            "n": evaluation.report["n"]}
    if evaluation.report.get("macro_auc") is not None:
        flat["macro_auc"] = evaluation.report["macro_auc"]
    for name, values in evaluation.report["per_class"].items():
        for key in ("sensitivity", "specificity", "precision", "f1"):
            flat[f"{key}_{name}"] = values[key]
    registry.log_version_metrics(version, flat, prefix="gold_")
    figure = confusion_matrix_figure(evaluation.report, names, title=f"v{version} on gold set")
    registry.log_version_figure(version, figure, f"gate/confusion_v{version}_report{report.id}.png")


def latest_report(version: int) -> GateReport | None:
    return db.session.execute(db.select(GateReport).filter_by(model_version=version)
                              .order_by(GateReport.id.desc()).limit(1)).scalar_one_or_none()


# --- decisions, promotion, rollback --------------------------------------------------------------
#
# Every alias change runs under one lease lock (a row in the settings table, whose primary key
# makes taking it a compare-and-set), so approvals, rollbacks and crash recovery never interleave
# their alias writes. The change is written to the audit table as an intent before the first
# alias write and completed after the last; `reconcile()` finishes an intent a crash cut short.

LOCK_KEY = "lock:alias-change"
LOCK_LEASE = timedelta(seconds=60)   # longer than any alias change takes; a crashed holder's lock expires


@contextmanager
def _alias_lock(stale_after: timedelta = LOCK_LEASE):
    if not _take_lock(stale_after):
        raise DecisionError("Another model change is in progress; try again in a moment.", 409)
    try:
        yield
    except Exception:
        # an error, not a crash: give the lock back; the intent (if written) stays for reconcile()
        db.session.rollback()
        _release_lock()
        raise
    _release_lock()


def _take_lock(stale_after: timedelta) -> bool:
    holder = {"pid": os.getpid(), "host": socket.gethostname()}
    for attempt in range(2):
        try:
            # a plain INSERT: the primary key makes it a compare-and-set across processes
            db.session.execute(insert(Setting).values(key=LOCK_KEY, value=holder, updated_at=utcnow()))
            db.session.commit()
            return True
        except IntegrityError:
            db.session.rollback()
            if attempt or not _break_stale_lock(stale_after):
                return False
    return False


def _break_stale_lock(stale_after: timedelta) -> bool:
    held = db.session.execute(db.select(Setting.value, Setting.updated_at)
                              .where(Setting.key == LOCK_KEY)).one_or_none()
    if held is None:
        return True
    value = held.value or {}
    holder_gone = value.get("host") == socket.gethostname() and not _alive(value.get("pid"))
    if not holder_gone and held.updated_at > utcnow() - stale_after:
        return False
    # conditional: if two processes break the same stale lock, only one succeeds
    broken = db.session.execute(delete(Setting).where(Setting.key == LOCK_KEY,
                                                      Setting.updated_at == held.updated_at)).rowcount
    db.session.commit()
    if broken:
        log.warning("took over the alias-change lock from %s", value)
    return bool(broken)


def _alive(pid) -> bool:
    if not isinstance(pid, int):
        return True  # unknown: let the lease decide
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _release_lock() -> None:
    db.session.execute(delete(Setting).where(Setting.key == LOCK_KEY))
    db.session.commit()


def decide(version: int, user: User | None, *, approve: bool, reason: str, override: bool = False,
           automatic: bool = False, after_step: aliases.Step | None = None) -> AuditEvent:
    """Approve (and promote) or reject a candidate; returns the decision's audit event. Only the
    first decision on a gate report counts: two engineers approving at once produce one promotion."""
    reason = (reason or "").strip()
    if not reason:
        raise DecisionError("A written reason is required.")
    registry = services().registry
    report = latest_report(version)
    if report is None:
        raise DecisionError(f"Version {version} has not been through the gate yet.", 409)
    if approve and not report.passed and not override:
        raise DecisionError("The gate failed: approving needs an explicit override with its reason.")
    actor, actor_id = (user.username, user.id) if user else ("system", None)
    if not approve:
        if registry.version_for(CANDIDATE) != version:
            raise DecisionError(f"Version {version} is not the current candidate.", 409)
        event = _claim(report, "rejected", actor, actor_id, reason, automatic=automatic)
        db.session.commit()
        aliases._clear_if(registry, CANDIDATE, version)
        registry.set_tags(version, {"rejected": True})
        return event
    with _alias_lock():
        _finish_interrupted()
        current = registry.aliases()
        if current.get(CANDIDATE) != version:
            raise DecisionError(f"Version {version} is not the current candidate.", 409)
        if report.champion_version != current.get(CHAMPION):
            raise DecisionError(f"The gate compared v{version} with v{report.champion_version}, but "
                                f"v{current.get(CHAMPION)} is champion now: run the gate again.", 409)
        change = aliases.plan_promotion(current, version)
        # the decision, its audit event and the promotion intent commit together: a crash
        # after this point is finished by reconcile(), before it nothing happened
        approval = _claim(report, "approved", actor, actor_id, reason, override=not report.passed,
                          automatic=automatic)
        _change(change, actor, actor_id, reason, automatic=automatic, after_step=after_step)
    services().server.refresh()
    return approval


def _claim(report: GateReport, decision: str, actor: str, actor_id: int | None, reason: str,
           override: bool = False, automatic: bool = False) -> AuditEvent:
    """Compare-and-set on the report's decision; the loser of a race gets 409."""
    claimed = db.session.execute(update(GateReport).where(GateReport.id == report.id,
                                                          GateReport.decision.is_(None))
                                 .values(decision=decision)).rowcount
    if claimed != 1:
        db.session.rollback()
        raise DecisionError(f"Version {report.model_version} was already decided.", 409)
    event = AuditEvent(kind="approval" if decision == "approved" else "rejection", actor_id=actor_id,
                       actor_name=actor, model_version=report.model_version,
                       from_version=report.champion_version, reason=reason, override=override,
                       automatic=automatic, details={"gate_passed": report.passed, "gate_report": report.id})
    db.session.add(event)
    return event


def rollback(user: User | None, reason: str, expected_champion: int | None = None,
             after_step: aliases.Step | None = None) -> AuditEvent:
    """Put `champion` back on `previous`. `expected_champion` is the champion the user saw: a
    second click (or a second engineer) does not roll back the rollback."""
    reason = (reason or "").strip()
    if not reason:
        raise DecisionError("A written reason is required.")
    actor, actor_id = (user.username, user.id) if user else ("system", None)
    with _alias_lock():
        _finish_interrupted()
        current = services().registry.aliases()
        if expected_champion is not None and current.get(CHAMPION) != expected_champion:
            raise DecisionError(f"v{current.get(CHAMPION)} is champion now, not v{expected_champion}: "
                                "someone changed it meanwhile.", 409)
        try:
            change = aliases.plan_rollback(current)
        except aliases.PromotionError as error:
            raise DecisionError(str(error), 409) from None
        done = _change(change, actor, actor_id, reason, after_step=after_step)
    services().server.refresh()
    return done


def _change(change: aliases.AliasChange, actor: str, actor_id: int | None, reason: str,
            automatic: bool = False, after_step: aliases.Step | None = None) -> AuditEvent:
    """Intent first, then the aliases, then the completion (call under the alias lock)."""
    operation = uuid.uuid4().hex
    kind = "promotion" if change.action == "promote" else "rollback"
    common = dict(kind=kind, actor_id=actor_id, actor_name=actor, model_version=change.champion_after,
                  from_version=change.champion_before, reason=reason, automatic=automatic)
    db.session.add(AuditEvent(**common, details={"phase": "started", "operation": operation,
                                                 "change": change.to_dict()}))
    db.session.commit()
    aliases.apply(services().registry, change, after_step=after_step)
    done = AuditEvent(**common, details={"phase": "completed", "operation": operation,
                                         "change": change.to_dict()})
    db.session.add(done)
    db.session.commit()
    return done


def unfinished() -> bool:
    """Whether an alias change was started and never completed (cheap, read-only)."""
    events = db.session.execute(db.select(AuditEvent.details).where(
        AuditEvent.kind.in_(("promotion", "rollback"))).order_by(AuditEvent.id.desc()).limit(50)).scalars()
    started, closed = set(), set()
    for details in events:
        (started if (details or {}).get("phase") == "started" else closed).add((details or {}).get("operation"))
    return bool(started - closed)


def reconcile(stale_after: timedelta = LOCK_LEASE) -> list[str]:
    """Finish an alias change that a crash interrupted, so one champion stands and the history
    says so. Safe to call at any start and from any process; returns the operations it finished."""
    try:
        with _alias_lock(stale_after):
            finished = _finish_interrupted()
    except DecisionError:
        return []  # another process holds the lock: it finishes what is unfinished
    if finished:
        services().server.refresh()
    return finished


def _finish_interrupted() -> list[str]:
    events = db.session.execute(db.select(AuditEvent).where(AuditEvent.kind.in_(("promotion", "rollback")))
                                .order_by(AuditEvent.id)).scalars().all()
    closed = {(e.details or {}).get("operation") for e in events
              if (e.details or {}).get("phase") in ("completed", "abandoned")}
    open_ = [e for e in events if (e.details or {}).get("phase") == "started"
             and e.details["operation"] not in closed]
    registry, finished = services().registry, []
    for position, event in enumerate(open_):
        change = aliases.AliasChange.from_dict(event.details["change"])
        champion = registry.version_for(CHAMPION)
        latest = position == len(open_) - 1
        if latest and champion in (change.champion_before, change.champion_after):
            aliases.apply(registry, change)
            phase, note = "completed", {"recovered": True}
            log.warning("finished an interrupted %s of version %s", event.kind, event.model_version)
        else:
            # a later change or a hand-made alias move overtook it: applying it now would undo that
            phase, note = "abandoned", {"champion_found": champion}
            log.warning("abandoned an interrupted %s of version %s", event.kind, event.model_version)
        db.session.add(AuditEvent(kind=event.kind, actor_id=event.actor_id, actor_name=event.actor_name,
                                  model_version=event.model_version, from_version=event.from_version,
                                  reason=event.reason, automatic=event.automatic,
                                  details={"phase": phase, "operation": event.details["operation"],
                                           "change": change.to_dict(), **note}))
        db.session.commit()
        finished.append(event.details["operation"])
    return finished


def history(limit: int = 500) -> list[AuditEvent]:
    """What the history page and API show: every event but the internal 'started' markers."""
    events = db.session.execute(db.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)).scalars()
    return [e for e in events if (e.details or {}).get("phase") != "started"]


def event_to_dict(event: AuditEvent) -> dict:
    details = event.details or {}
    return {"id": event.id, "kind": event.kind, "actor": event.actor_name,
            "model_version": event.model_version, "from_version": event.from_version,
            "reason": event.reason, "override": event.override, "automatic": event.automatic,
            "created_at": event.created_at.isoformat() + "Z",
            "recovered": bool(details.get("recovered")), "abandoned": details.get("phase") == "abandoned",
            "gold_snapshot": details.get("snapshot")}


def gate_verdicts() -> dict[int, dict]:
    """The latest gate verdict and decision per model version."""
    latest = db.select(func.max(GateReport.id)).group_by(GateReport.model_version)
    reports = db.session.execute(db.select(GateReport).where(GateReport.id.in_(latest))).scalars()
    return {r.model_version: {"passed": r.passed, "decision": r.decision, "failures": r.result["failures"],
                              "champion_version": r.champion_version,
                              "gold_snapshot": r.snapshot.content_hash, "report_id": r.id} for r in reports}
