"""The append-only history as users read it: every audited change (labels, classes, roles, tokens,
gate runs, decisions, promotions, rollbacks, reports, PACS and more: webapp/audit/kinds.py), newest
first, filtered by kind."""

from __future__ import annotations

from flask import request

from webapp import audit
from webapp.errors import Problem
from webapp.extensions import db
from webapp.models import AuditEvent

# every kind the platform records (the writer takes no other), code -> the words the history shows
KINDS = {kind.value: kind.what for kind in audit.Kind}
MODEL_KINDS = tuple(kind.value for kind in audit.MODEL_KINDS)


def history(limit: int = 500, kinds: list[str] | None = None) -> list[AuditEvent]:
    """What the history page and API show: every event but the internal 'started' markers."""
    query = db.select(AuditEvent).order_by(AuditEvent.id.desc())
    if kinds:
        query = query.where(AuditEvent.kind.in_(kinds))
    events = db.session.execute(query.limit(limit)).scalars()
    return [e for e in events if (e.details or {}).get("phase") != "started"]


def requested_kinds() -> list[str]:
    """`?kind=label` or `?kind=promotion,rollback`; none means every kind."""
    kinds = [k.strip() for value in request.args.getlist("kind") for k in value.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise Problem(f"Unknown kind {', '.join(unknown)}; the kinds are {', '.join(KINDS)}.")
    return kinds


def from_request() -> list[AuditEvent]:
    """The history the page or API asked for (`?kind=`)."""
    return history(kinds=requested_kinds())


def event_to_dict(event: AuditEvent) -> dict:
    details = event.details or {}
    return {
        "id": event.id,
        "kind": event.kind,
        "what": KINDS.get(event.kind, event.kind),
        "actor": event.actor_name,
        "model_version": event.model_version,
        "from_version": event.from_version,
        "reason": event.reason,
        "override": event.override,
        "automatic": event.automatic,
        "created_at": event.created_at.isoformat() + "Z",
        "recovered": bool(details.get("recovered")),
        "abandoned": details.get("phase") == "abandoned",
        "gold_snapshot": details.get("snapshot"),
        "details": details,
    }
