"""The one way to append to the history: who did what, when, to which thing. Never updated, never deleted."""

from __future__ import annotations

from typing import Any

from webapp.extensions import db
from webapp.models import AuditEvent, User


def record(
    kind: str,
    actor: User | None,
    *,
    reason: str | None = None,
    model_version: int | None = None,
    from_version: int | None = None,
    details: dict[str, Any] | None = None,
    automatic: bool = False,
    override: bool = False,
) -> AuditEvent:
    """Add an event to the session; the caller's commit stores it together with the change it records,
    so a change and its history entry land or fail together. Details never hold patient identifiers."""
    event = AuditEvent(
        kind=kind,
        actor_id=actor.id if actor is not None else None,
        actor_name=actor.username if actor is not None else "system",
        reason=reason,
        model_version=model_version,
        from_version=from_version,
        details=details,
        automatic=automatic,
        override=override,
    )
    db.session.add(event)
    return event
