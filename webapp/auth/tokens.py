"""API bearer tokens: created once and shown once, stored only as a hash, expiring, revocable."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from flask import request
from sqlalchemy.exc import SQLAlchemyError

from webapp import audit
from webapp.errors import Problem
from webapp.extensions import db
from webapp.models import ApiToken, User, utcnow
from webapp.services import services

log = logging.getLogger(__name__)


def create_token(user: User, name: str = "", days: int | None = None, actor: User | None = None) -> str:
    """A new token for `user`, valid `days` (security.token_days by default); the token and its
    audit entry are stored in one commit. Returns the secret, which is never stored."""
    days = services().settings.security.token_days if days is None else days
    if days <= 0:
        raise Problem("A token must be valid for at least one day.")
    token = "medal_" + secrets.token_urlsafe(32)
    row = ApiToken(user=user, token_hash=ApiToken.hash(token), name=name, expires_at=utcnow() + timedelta(days=days))
    db.session.add(row)
    db.session.flush()
    audit.record(
        audit.Kind.TOKEN_CREATED,
        actor,
        details={"token_id": row.id, "user": user.username, "name": name, "expires_at": row.expires_at.isoformat()},
    )
    db.session.commit()
    return token


def revoke_token(token_id: int, actor: User | None = None) -> ApiToken:
    row = db.session.get(ApiToken, token_id)
    if row is None:
        raise Problem(f"No token {token_id}.", 404)
    if not row.revoked:
        row.revoked = True
        audit.record(
            audit.Kind.TOKEN_REVOKED, actor, details={"token_id": row.id, "user": row.user.username, "name": row.name}
        )
        db.session.commit()
    return row


def list_tokens() -> list[ApiToken]:
    return list(db.session.execute(db.select(ApiToken).order_by(ApiToken.id)).scalars())


def token_user() -> User | None:
    """The active user behind the request's bearer token, or None; looked up once per request."""
    cache = request.environ  # per request (g outlives a request where an app context is held open)
    if "medal.token_user" not in cache:
        cache["medal.token_user"] = _lookup(request.headers.get("Authorization", ""))
    return cache["medal.token_user"]


def _lookup(header: str) -> User | None:
    if not header.startswith("Bearer "):
        return None
    now = utcnow()
    row = db.session.execute(
        db.select(ApiToken).filter_by(token_hash=ApiToken.hash(header[7:].strip()), revoked=False)
    ).scalar_one_or_none()
    if row is None or row.expires_at <= now or not row.user.is_active:
        return None
    _touch(row, now)
    return row.user


def _touch(row: ApiToken, now) -> None:
    """Note when the token was last used, at most once per security.token_touch_seconds and in
    a short transaction of its own: a write on every read would queue every API call behind
    the database's write lock, and must never extend the request's own transaction."""
    cutoff = now - timedelta(seconds=services().settings.security.token_touch_seconds)
    if row.last_used_at is not None and row.last_used_at > cutoff:
        return
    table = ApiToken.__table__
    try:
        with db.engine.begin() as connection:  # several processes may race; the WHERE lets one win
            connection.execute(
                table.update()
                .where(table.c.id == row.id)
                .where((table.c.last_used_at.is_(None)) | (table.c.last_used_at <= cutoff))
                .values(last_used_at=now)
            )
    except SQLAlchemyError as error:  # a busy database must not fail the request over a usage note
        log.warning("could not note the use of token %s: %s", row.id, error.__class__.__name__)
