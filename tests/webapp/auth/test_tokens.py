"""API tokens: hashed, expiring, listed without secrets, revocable from the CLI, audited, touched rarely."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import user
from webapp.extensions import db
from webapp.models import ApiToken, AuditEvent, utcnow


def _create(runner, *args) -> str:
    result = runner.invoke(args=["tokens", "create", *args])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def test_create_list_revoke_from_the_cli(app, runner, client):
    token = _create(runner, "engineer", "--name", "ci", "--days", "7")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/models", headers=headers).status_code == 200
    row = db.session.execute(db.select(ApiToken)).scalar_one()
    assert row.token_hash == ApiToken.hash(token) and token not in row.token_hash
    assert timedelta(days=6, hours=23) < row.expires_at - utcnow() <= timedelta(days=7)

    listing = runner.invoke(args=["tokens", "list"]).output
    assert token not in listing and row.token_hash not in listing
    assert f"{row.id:>4}  engineer" in listing and "ci" in listing and "active" in listing

    result = runner.invoke(args=["tokens", "revoke", str(row.id)])
    assert result.exit_code == 0, result.output
    assert client.get("/api/v1/models", headers=headers).status_code == 401
    assert "revoked" in runner.invoke(args=["tokens", "list"]).output
    assert runner.invoke(args=["tokens", "revoke", "999"]).exit_code != 0

    kinds = [(e.kind, e.details["token_id"]) for e in AuditEvent.query.order_by(AuditEvent.id) if "token" in e.kind]
    assert kinds == [("token_created", row.id), ("token_revoked", row.id)]


def test_tokens_expire_by_default_after_the_configured_days(app, runner, client):
    token = _create(runner, "doctor")
    row = db.session.execute(db.select(ApiToken)).scalar_one()
    assert timedelta(days=89) < row.expires_at - utcnow() <= timedelta(days=90)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/images/999999", headers=headers).status_code == 404
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert client.get("/api/v1/images/999999", headers=headers).status_code == 401
    assert "expired" in runner.invoke(args=["tokens", "list"]).output


def test_last_used_is_written_at_most_once_a_minute(app, runner, client):
    token = _create(runner, "engineer")
    headers = {"Authorization": f"Bearer {token}"}

    def last_used():
        db.session.expire_all()
        return db.session.execute(db.select(ApiToken.last_used_at)).scalar_one()

    client.get("/api/v1/models", headers=headers)
    first = last_used()
    assert first is not None
    for _ in range(5):
        client.get("/api/v1/models", headers=headers)
    assert last_used() == first  # five more requests, no write
    stale = utcnow() - timedelta(seconds=61)
    db.session.execute(db.update(ApiToken).values(last_used_at=stale))
    db.session.commit()
    client.get("/api/v1/models", headers=headers)
    assert last_used() > stale


def test_a_deactivated_users_tokens_stop_working(app, runner, client):
    token = _create(runner, "doctor")
    assert runner.invoke(args=["users", "deactivate", "doctor"]).exit_code == 0
    assert client.get("/api/v1/images/999999", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert not user("doctor").active
