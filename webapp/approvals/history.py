"""The append-only history as users read it: gate runs, decisions, promotions, rollbacks."""

from __future__ import annotations

from webapp.extensions import db
from webapp.models import AuditEvent


def history(limit: int = 500) -> list[AuditEvent]:
    """What the history page and API show: every event but the internal 'started' markers."""
    events = db.session.execute(db.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)).scalars()
    return [e for e in events if (e.details or {}).get("phase") != "started"]


def event_to_dict(event: AuditEvent) -> dict:
    details = event.details or {}
    return {
        "id": event.id,
        "kind": event.kind,
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
    }
