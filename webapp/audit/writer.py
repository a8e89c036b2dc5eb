"""The one way to append to the history: who did what, when, to which thing. Never updated, never deleted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from webapp.audit.kinds import Kind
from webapp.extensions import db
from webapp.models import AuditEvent, User


@dataclass(frozen=True)
class Actor:
    """Who acted, as the history names them: a user's name and id, or the system (no id)."""

    name: str
    id: int | None = None

    @classmethod
    def of(cls, who: User | Actor | None) -> Actor:
        if isinstance(who, Actor):
            return who
        return SYSTEM if who is None else cls(who.username, who.id)


SYSTEM = Actor("system")


def record(
    kind: Kind,
    actor: User | Actor | None,
    *,
    reason: str | None = None,
    model_version: int | None = None,
    from_version: int | None = None,
    details: dict[str, Any] | None = None,
    automatic: bool = False,
    override: bool = False,
) -> AuditEvent:
    """Add an event to the session; the caller's commit stores it together with the change it records,
    so a change and its history entry land or fail together. `actor`: a user, an Actor (a name and
    id, e.g. re-recorded from an earlier event), or None for the system. Details never hold patient
    identifiers."""
    who = Actor.of(actor)
    event = AuditEvent(
        kind=Kind(kind).value,
        actor_id=who.id,
        actor_name=who.name,
        reason=reason,
        model_version=model_version,
        from_version=from_version,
        details=details,
        automatic=automatic,
        override=override,
    )
    db.session.add(event)
    return event
