"""Flask extensions, created unbound and bound in create_app()."""

import sqlite3
from typing import cast

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import CursorResult, Executable, MetaData

# Named constraints so Alembic batch migrations on SQLite can alter them later.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class WalConnection(sqlite3.Connection):
    """The app database's SQLite connections: write-ahead log, so a reader never waits for a
    writer and several web processes share the file (the busy timeout is sqlite3's `timeout`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA journal_mode=WAL")  # kept in the file; cheap to repeat


db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING))
migrate = Migrate(render_as_batch=True)
login = LoginManager()
csrf = CSRFProtect()
# no default limits: only the routes that name one (POST /login, the chat) are limited; the storage
# URI comes from security.rate_limit_storage (memory:// counts per process, redis:// across them)
limiter = Limiter(key_func=get_remote_address)


def rows_changed(statement: Executable) -> int:
    """The rows an UPDATE or DELETE changed: how a conditional write learns whether it won. (Session.execute
    is typed as giving a Result; a data-changing statement's is a CursorResult, which counts them.)"""
    return cast(CursorResult, db.session.execute(statement)).rowcount


def signed_in_user() -> str:
    """A rate-limit key: the request's user (bearer token or session), so one user's limit holds on
    every address and across the pages and the API; the client address when no one is signed in."""
    from flask import g
    from flask_login import current_user

    user = g.get("api_user") or (current_user if current_user.is_authenticated else None)
    return f"user:{user.id}" if user is not None else get_remote_address()
