"""Decisions on a candidate (an engineer's, or automatic where config allows), promotion and
rollback. Every alias change runs under the lease lock and is written to the audit table as an
intent before the first alias write and completed after the last; recovery finishes an intent a
crash cut short."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import update

from registry import aliases
from registry.gate import auto_promotion_allowed
from registry.uris import CANDIDATE, CHAMPION
from webapp import audit
from webapp.approvals import DecisionError
from webapp.approvals.gate_run import latest_report, recent_agreement, run_gate
from webapp.approvals.lock import alias_lock
from webapp.approvals.recovery import finish_interrupted
from webapp.extensions import db, rows_changed
from webapp.models import AuditEvent, GateReport, User
from webapp.processes import pause_point
from webapp.services import services

log = logging.getLogger(__name__)


def on_candidate(version: int) -> GateReport:
    """A new candidate: run the gate, then promote at once only if config allows and it qualifies."""
    report = run_gate(version)
    auto = services().settings.gate.policy.auto_promote
    if auto.enabled:
        allowed, why = auto_promotion_allowed(
            report.passed,
            report.candidate_metrics,
            report.champion_metrics,
            auto,
            recent_agreement(),
            report.result.get("below_floor"),
            report.result.get("uncertain"),
        )
        if allowed:
            try:
                decide(version, None, approve=True, reason=f"Automatic: {why}", automatic=True)
            except DecisionError as error:  # e.g. an engineer decided first: theirs stands
                log.warning("auto-promotion of version %s skipped: %s", version, error)
        else:
            log.info("version %s not auto-promoted: %s", version, why)
    return report


def decide(
    version: int,
    user: User | None,
    *,
    approve: bool,
    reason: str,
    override: bool = False,
    automatic: bool = False,
    after_step: aliases.Step | None = None,
) -> AuditEvent:
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
    actor = audit.Actor.of(user)
    if not approve:
        if registry.version_for(CANDIDATE) != version:
            raise DecisionError(f"Version {version} is not the current candidate.", 409)
        event = _claim(report, "rejected", actor, reason, automatic=automatic)
        db.session.commit()
        aliases.clear_if(registry, CANDIDATE, version)
        registry.set_tags(version, {"rejected": True})
        return event
    with alias_lock():
        finish_interrupted()
        current = registry.aliases()
        if current.get(CANDIDATE) != version:
            raise DecisionError(f"Version {version} is not the current candidate.", 409)
        if report.champion_version != current.get(CHAMPION):
            raise DecisionError(
                f"The gate compared v{version} with v{report.champion_version}, but "
                f"v{current.get(CHAMPION)} is champion now: run the gate again.",
                409,
            )
        change = aliases.plan_promotion(current, version)
        # the decision, its audit event and the promotion intent commit together: a crash
        # after this point is finished by reconcile(), before it nothing happened
        approval = _claim(report, "approved", actor, reason, override=not report.passed, automatic=automatic)
        change_aliases(change, actor, reason, automatic=automatic, after_step=after_step)
    services().server.refresh()
    return approval


def _claim(
    report: GateReport,
    decision: str,
    actor: audit.Actor,
    reason: str,
    override: bool = False,
    automatic: bool = False,
) -> AuditEvent:
    """Compare-and-set on the report's decision; the loser of a race gets 409."""
    claimed = rows_changed(
        update(GateReport).where(GateReport.id == report.id, GateReport.decision.is_(None)).values(decision=decision)
    )
    if claimed != 1:
        db.session.rollback()
        raise DecisionError(f"Version {report.model_version} was already decided.", 409)
    return audit.record(
        audit.Kind.APPROVAL if decision == "approved" else audit.Kind.REJECTION,
        actor,
        model_version=report.model_version,
        from_version=report.champion_version,
        reason=reason,
        override=override,
        automatic=automatic,
        details={"gate_passed": report.passed, "gate_report": report.id},
    )


def rollback(
    user: User | None, reason: str, expected_champion: int | None = None, after_step: aliases.Step | None = None
) -> AuditEvent:
    """Put `champion` back on `previous`. `expected_champion` is the champion the user saw: when
    another is champion now, 409 naming it. A rollback never promotes a model a rollback withdrew,
    so a second click, or a concurrent loser trying again, cannot undo the first."""
    reason = (reason or "").strip()
    if not reason:
        raise DecisionError("A written reason is required.")
    actor = audit.Actor.of(user)
    registry = services().registry
    with alias_lock():
        finish_interrupted()
        current = registry.aliases()
        champion = current.get(CHAMPION)
        if expected_champion is not None and champion != expected_champion:
            since = _champion_since(champion)
            raise DecisionError(
                f"v{champion} is champion now, not v{expected_champion}{f', since {since}' if since else ''}: "
                "look at the models before changing them.",
                409,
            )
        try:
            change = aliases.plan_rollback(current, aliases.withdrawn(registry))
        except aliases.PromotionError as error:
            since = _champion_since(champion)
            raise DecisionError(f"{error} v{champion} is champion{f' since {since}' if since else ''}.", 409) from None
        done = change_aliases(change, actor, reason, after_step=after_step)
    services().server.refresh()
    return done


def _champion_since(champion: int | None) -> str:
    """How `champion` came to serve, in words, from the latest completed alias change ('' when that
    change did not make it champion, e.g. an alias moved by hand)."""
    events = db.session.execute(
        db.select(AuditEvent)
        .where(AuditEvent.kind.in_(("promotion", "rollback")))
        .order_by(AuditEvent.id.desc())
        .limit(20)
    ).scalars()
    last = next((e for e in events if (e.details or {}).get("phase") in ("completed", "abandoned")), None)
    if last is None or last.details.get("phase") != "completed" or last.model_version != champion:
        return ""
    when = last.created_at.strftime("%Y-%m-%d %H:%M UTC")
    if last.kind == "rollback":
        return f"the rollback by {last.actor_name} at {when} withdrew v{last.from_version}"
    return f"{last.actor_name} promoted it at {when}"


def change_aliases(
    change: aliases.AliasChange,
    actor: audit.Actor,
    reason: str,
    automatic: bool = False,
    after_step: aliases.Step | None = None,
) -> AuditEvent:
    """Intent first, then the aliases, then the completion (call under the alias lock)."""
    operation = uuid.uuid4().hex
    kind = audit.Kind.PROMOTION if change.action == "promote" else audit.Kind.ROLLBACK

    def record(phase: str) -> AuditEvent:
        return audit.record(
            kind,
            actor,
            model_version=change.champion_after,
            from_version=change.champion_before,
            reason=reason,
            automatic=automatic,
            details={"phase": phase, "operation": operation, "change": change.to_dict()},
        )

    record("started")
    db.session.commit()
    pause_point(f"{kind}:intent")  # test hook: the intent is stored, no alias moved yet

    def step(name: str) -> None:
        pause_point(f"{kind}:{name}")  # test hook: kill -9 between two alias steps
        if after_step is not None:
            after_step(name)

    aliases.apply(services().registry, change, after_step=step)
    done = record("completed")
    db.session.commit()
    return done
