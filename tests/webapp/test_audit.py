"""The append-only history holds every auditable change, with who and when, and shows it by kind."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.conftest import api_token, login, seed_pool

# the changes issue 12 names, as the history records them
REQUIRED = {
    "label",
    "role_changed",
    "token_created",
    "token_revoked",
    "class",
    "gate",
    "approval",
    "rejection",
    "promotion",
    "rollback",
}


def _everything(app, client, runner, tiny) -> None:
    """Each auditable action, through the routes or the CLI as a user would do it."""
    from webapp.approvals import decisions

    image_id = seed_pool(1)[0]
    doctor, engineer = api_token(app, "doctor"), api_token(app, "engineer")
    assert client.post(f"/api/v1/images/{image_id}/labels", headers=doctor, json={"label": "normal"}).status_code == 201
    assert runner.invoke(args=["users", "set-role", "doctor2", "engineer"]).exit_code == 0
    created = runner.invoke(args=["tokens", "create", "doctor2", "--name", "audit-test"])
    assert created.exit_code == 0, created.output
    listed = runner.invoke(args=["tokens", "list"]).output
    token_id = re.search(r"^\s*(\d+)\s+doctor2\s+audit-test", listed, re.M).group(1)
    assert runner.invoke(args=["tokens", "revoke", token_id]).exit_code == 0
    assert runner.invoke(args=["classes", "add", "covid_19"]).exit_code == 0

    from tests.conftest import seed_gold

    seed_gold(8)
    tiny.set_alias("candidate", 2)
    decisions.on_candidate(2)  # the gate
    rejected = client.post("/api/v1/models/2/reject", headers=engineer, json={"reason": "not better"})
    assert rejected.status_code == 200, rejected.data
    tiny.set_alias("candidate", 3)
    decisions.on_candidate(3)
    approved = client.post(
        "/api/v1/models/3/approve", headers=engineer, json={"reason": "reviewed side by side", "override": True}
    )
    assert approved.status_code == 200, approved.data
    rolled = runner.invoke(args=["rollback", "--reason", "back to v1", "--user", "engineer"])
    assert rolled.exit_code == 0, rolled.output


def test_every_auditable_change_is_in_the_history_with_who_and_when(app, client, runner, tiny):
    from webapp.extensions import db
    from webapp.models import AuditEvent, utcnow

    started = utcnow() - timedelta(seconds=1)
    _everything(app, client, runner, tiny)
    events = db.session.execute(db.select(AuditEvent)).scalars().all()
    found = {event.kind for event in events}
    assert REQUIRED <= found, f"missing kinds: {sorted(REQUIRED - found)}"
    for event in events:
        assert event.actor_name, event.kind
        assert started <= event.created_at <= utcnow(), event.kind
    by_kind = {event.kind: event for event in events}
    assert by_kind["label"].actor_name == "doctor"
    assert by_kind["approval"].actor_name == "engineer" and by_kind["rollback"].actor_name == "engineer"
    assert by_kind["rejection"].actor_name == "engineer"

    # the API shows every kind, and filters by kind
    engineer = api_token(app, "engineer")
    shown = client.get("/api/v1/models/history", headers=engineer).get_json()["events"]
    assert REQUIRED <= {event["kind"] for event in shown}
    only = client.get("/api/v1/models/history?kind=promotion,rollback", headers=engineer).get_json()["events"]
    assert only and {event["kind"] for event in only} == {"promotion", "rollback"}
    labels = client.get("/api/v1/models/history?kind=label", headers=engineer).get_json()["events"]
    assert [event["actor"] for event in labels] == ["doctor"]
    assert client.get("/api/v1/models/history?kind=nonsense", headers=engineer).status_code == 400

    # and so does the page
    login(client, "engineer")
    page = client.get("/history").get_data(as_text=True)
    for name in ("label", "role change", "token created", "token revoked", "class change", "rollback"):
        assert any(cell.startswith(name.capitalize()) for cell in what_cells(page)), name
    filtered = client.get("/history?kind=class").get_data(as_text=True)
    assert "covid_19" in filtered and not any(cell.startswith("Rollback") for cell in what_cells(filtered))


def what_cells(page: str) -> list[str]:
    """The history table's What column, as text (its tags included)."""
    cells = re.findall(r'<td class="what">(.*?)</td>', page, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in cells]


def test_audit_events_cannot_be_changed_or_deleted(app):
    from webapp import audit
    from webapp.extensions import db

    event = audit.record("approval", None, reason="first")
    db.session.commit()
    event.reason = "rewritten"
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.commit()
    db.session.rollback()
    db.session.delete(event)
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.commit()
    db.session.rollback()


def test_every_kind_the_writer_takes_can_be_filtered_by(app, client):
    """The history's filter knows every kind the platform records (report_amended, pacs_pull ... were
    once a 400), on the API and on the page."""
    from webapp import audit
    from webapp.extensions import db

    engineer = api_token(app, "engineer")  # itself a token_created event
    login(client, "engineer")
    for kind in audit.Kind:
        audit.record(kind, None, reason=f"one {kind.value}", details={"test": kind.value})
    db.session.commit()
    for kind in audit.Kind:
        response = client.get(f"/api/v1/models/history?kind={kind.value}", headers=engineer)
        assert response.status_code == 200, (kind, response.get_json())
        events = response.get_json()["events"]
        assert {event["kind"] for event in events} == {kind.value}
        assert [(event["what"], event["actor"]) for event in events if event["reason"] == f"one {kind.value}"] == [
            (kind.what, "system")
        ]
        page = client.get(f"/history?kind={kind.value}")
        what = kind.what[:1].upper() + kind.what[1:]
        cells = what_cells(page.get_data(as_text=True))
        assert page.status_code == 200 and any(cell.startswith(what) for cell in cells), kind


def test_the_writer_takes_only_the_kinds_and_names_its_actor(app):
    from webapp import audit
    from webapp.extensions import db
    from webapp.models import User

    with pytest.raises(ValueError):
        audit.record("report_amend", None)  # a misspelt kind is refused, never stored
    doctor = db.session.execute(db.select(User).filter_by(username="doctor")).scalar_one()
    by_user = audit.record(audit.Kind.LABEL, doctor)
    by_name = audit.record(audit.Kind.PROMOTION, audit.Actor("engineer", 7))
    by_system = audit.record(audit.Kind.GATE, None)
    assert (by_user.actor_name, by_user.actor_id) == ("doctor", doctor.id)
    assert (by_name.actor_name, by_name.actor_id) == ("engineer", 7)
    assert (by_system.actor_name, by_system.actor_id) == ("system", None)
    db.session.rollback()


def test_no_event_is_built_beside_the_writer():
    """History rows come from audit.record() alone: one place checks the kind and names the actor."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "webapp"
    builders = [
        str(path.relative_to(root))
        for path in sorted(root.rglob("*.py"))
        if "AuditEvent(" in path.read_text() and path.relative_to(root).parts[0] not in ("audit", "models.py")
    ]
    assert builders == []
