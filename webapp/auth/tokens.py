"""API bearer tokens: created once and shown once, stored only as a hash."""

from __future__ import annotations

import secrets

from flask import request

from webapp.extensions import db
from webapp.models import ApiToken, User, utcnow


def create_token(user: User, name: str = "") -> str:
    token = "medal_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user=user, token_hash=ApiToken.hash(token), name=name))
    db.session.commit()
    return token


def token_user() -> User | None:
    """The active user behind the request's bearer token, or None."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    row = db.session.execute(
        db.select(ApiToken).filter_by(token_hash=ApiToken.hash(header[7:].strip()), revoked=False)
    ).scalar_one_or_none()
    if row is None or not row.user.is_active:
        return None
    row.last_used_at = utcnow()
    db.session.commit()
    return row.user
