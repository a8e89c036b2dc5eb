"""The append-only history as users read it: every audited change (labels, classes, roles, tokens,
gate runs, decisions, promotions, rollbacks, reports, PACS and more: webapp/audit/kinds.py), newest
first, filtered by kind."""

from __future__ import annotations

from collections.abc import Callable

from flask import request

from webapp import audit
from webapp.classes.catalog import display
from webapp.errors import Problem
from webapp.extensions import db
from webapp.models import AuditEvent

# every kind the platform records (the writer takes no other), code -> the words the history shows
KINDS = {kind.value: kind.what for kind in audit.Kind}
MODEL_KINDS = tuple(kind.value for kind in audit.MODEL_KINDS)
# kept for the crash recovery, or shown as a tag of their own: not part of the details sentence
BOOKKEEPING = ("phase", "operation", "change", "recovered")


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


def details_text(event: AuditEvent) -> str:
    """An event's details as a sentence a person reads: class display names, words for flags, and
    nothing of the bookkeeping (operation ids, phases) that only the crash recovery needs."""
    details = {k: v for k, v in (event.details or {}).items() if k not in BOOKKEEPING}
    if not details:
        return ""
    describe = _DESCRIBE.get(event.kind)
    if describe is not None:
        try:
            return describe(details)
        except (KeyError, TypeError, ValueError):  # an older row of another shape: read as its fields
            pass
    return _fields(details)


def _fields(details: dict) -> str:
    """What no sentence is written for: each field in words ("worker pid: 12"), never a raw dict."""
    parts = []
    for key, value in details.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in value.items()) or "none"
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return " · ".join(parts)


def _label(d: dict) -> str:
    image, label = f"Image #{d['image_id']}", display(d["label"])
    if d.get("gold") == "agreeing reads":
        return f"{image}: gold label {label}, the blind reads agreed"
    if d.get("gold") == "adjudicated":
        return f"{image}: gold label {label}, settled by an adjudicator"
    if d.get("channel") == "gold":
        return f"{image}: blind gold read {label}"
    agreed = d.get("agreed")
    verdict = (
        "no model call to compare" if agreed is None else "confirmed the model" if agreed else "corrected the model"
    )
    via = {"api": " through the API", "web": ""}.get(d.get("channel") or "web", f" ({d.get('channel')})")
    return f"{image} labelled {label}{via}: {verdict}"


def _class(d: dict) -> str:
    if d["action"] == "add":
        return f"Added {display(d['class'])} ({d['class']})"
    if d["action"] == "rename":
        return f"Renamed {d['from']} to {display(d['to'])} ({d['to']})"
    if d["action"] == "remove":
        return f"Removed {d['class']}"
    return _fields(d)


def _user_created(d: dict) -> str:
    return f"{d['user']}, {d['role']}" + (", may adjudicate gold reads" if d.get("adjudicator") else "")


def _token(d: dict) -> str:
    until = f", valid until {str(d['expires_at'])[:10]}" if d.get("expires_at") else ""
    return f"Token “{d['name']}” (#{d['token_id']}) of {d['user']}{until}"


def _decision(d: dict) -> str:
    return f"Gate {'passed' if d['gate_passed'] else 'failed'} (gate report #{d['gate_report']})"


def _restore(d: dict) -> str:
    counts = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in (d.get("counts") or {}).items())
    return f"Backup taken {str(d['backup_created_at'])[:16].replace('T', ' ')}" + (f": {counts}" if counts else "")


def _fusion(d: dict) -> str:
    text = f"On image model v{d['image_model_version']}"
    if "train" in d:
        text += f": fitted on {d['train']} studies, measured on {d['gold']} gold images, gate " + (
            "passed" if d["passed"] else "failed"
        )
    return text


def _pacs_pull(d: dict) -> str:
    refused = sum((d.get("refused") or {}).values())
    text = (
        f"{d['studies_found']} studies found, {d['studies_pulled']} pulled"
        + (f", {d['studies_partial']} partly" if d.get("studies_partial") else "")
        + f"; {d['stored']} images stored, {d['existing']} already present"
        + (f", {refused} refused" if refused else "")
        + (f", {d['failed']} not retrieved" if d.get("failed") else "")
    )
    return text if d.get("ok", True) else f"Failed after {text}"


_DESCRIBE: dict[str, Callable[[dict], str]] = {
    audit.Kind.LABEL: _label,
    audit.Kind.CLASS: _class,
    audit.Kind.USER_CREATED: _user_created,
    audit.Kind.ROLE_CHANGED: lambda d: f"{d['user']}: {d['from']} → {d['to']}",
    audit.Kind.USER_DEACTIVATED: lambda d: f"{d['user']} ({d['role']})",
    audit.Kind.ACCOUNT_LOCKED: lambda d: f"{d['user']} locked for {d['minutes']} min after repeated failed log-ins",
    audit.Kind.TOKEN_CREATED: _token,
    audit.Kind.TOKEN_REVOKED: _token,
    audit.Kind.GATE: lambda d: f"Gold snapshot {str(d['snapshot'])[:10]}, {d['gold_size']} images",
    audit.Kind.APPROVAL: _decision,
    audit.Kind.REJECTION: _decision,
    # the first model's promotion: its reason says all ("First model: no champion to compare with.")
    audit.Kind.PROMOTION: lambda d: "" if d.get("bootstrap") else _fields(d),
    audit.Kind.RECOVERY: lambda d: f"Training run #{d['training_run']}: {d['why']}",
    audit.Kind.RESTORE: _restore,
    audit.Kind.REPORT_AMENDED: lambda d: f"Study #{d['image_id']}: {display(d['from'])} → {display(d['to'])}",
    audit.Kind.FUSION_CANDIDATE: _fusion,
    audit.Kind.FUSION_APPROVED: _fusion,
    audit.Kind.FUSION_REJECTED: _fusion,
    audit.Kind.PACS_PULL: _pacs_pull,
    audit.Kind.PACS_PUSH: lambda d: f"Heat map of image #{d['image_id']} stored in the PACS",
}
