"""Crash recovery: finish (or abandon, when overtaken) an alias change a dead process left."""

from __future__ import annotations

import logging
from datetime import timedelta

from registry import aliases
from registry.uris import CHAMPION
from webapp import audit
from webapp.approvals import DecisionError
from webapp.approvals.lock import LOCK_LEASE, alias_lock
from webapp.extensions import db
from webapp.models import AuditEvent
from webapp.services import services

log = logging.getLogger(__name__)
ALIAS_KINDS = tuple(kind.value for kind in audit.ALIAS_KINDS)


def unfinished() -> bool:
    """Whether an alias change was started and never completed (cheap, read-only)."""
    events = db.session.execute(
        db.select(AuditEvent.details).where(AuditEvent.kind.in_(ALIAS_KINDS)).order_by(AuditEvent.id.desc()).limit(50)
    ).scalars()
    started: set[str | None] = set()
    closed: set[str | None] = set()
    for details in events:
        (started if (details or {}).get("phase") == "started" else closed).add((details or {}).get("operation"))
    return bool(started - closed)


def reconcile(stale_after: timedelta = LOCK_LEASE) -> list[str]:
    """Finish an alias change that a crash interrupted, so one champion stands and the history
    says so. Safe to call at any start and from any process; returns the operations it finished."""
    try:
        with alias_lock(stale_after):
            finished = finish_interrupted()
    except DecisionError:
        return []  # another process holds the lock: it finishes what is unfinished
    if finished:
        services().server.refresh()
    return finished


def finish_interrupted() -> list[str]:
    """Close every open intent (call under the alias lock): the latest is applied if the champion
    is still where it left it, any other is abandoned, since applying it would undo a later change."""
    events = (
        db.session.execute(db.select(AuditEvent).where(AuditEvent.kind.in_(ALIAS_KINDS)).order_by(AuditEvent.id))
        .scalars()
        .all()
    )
    closed = {
        (e.details or {}).get("operation")
        for e in events
        if (e.details or {}).get("phase") in ("completed", "abandoned")
    }
    open_ = [e for e in events if (e.details or {}).get("phase") == "started" and e.details["operation"] not in closed]
    registry, finished = services().registry, []
    for position, event in enumerate(open_):
        change = aliases.AliasChange.from_dict(event.details["change"])
        champion = registry.version_for(CHAMPION)
        latest = position == len(open_) - 1
        note: dict[str, object]
        if latest and champion in (change.champion_before, change.champion_after):
            aliases.apply(registry, change)
            phase, note = "completed", {"recovered": True}
            log.warning("finished an interrupted %s of version %s", event.kind, event.model_version)
        else:
            phase, note = "abandoned", {"champion_found": champion}
            log.warning("abandoned an interrupted %s of version %s", event.kind, event.model_version)
        audit.record(  # in the name of whoever started the change
            audit.Kind(event.kind),
            audit.Actor(event.actor_name, event.actor_id),
            model_version=event.model_version,
            from_version=event.from_version,
            reason=event.reason,
            automatic=event.automatic,
            details={"phase": phase, "operation": event.details["operation"], "change": change.to_dict(), **note},
        )
        db.session.commit()
        finished.append(event.details["operation"])
    return finished
