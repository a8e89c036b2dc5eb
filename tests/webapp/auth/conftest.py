"""Auth tests: every request loads its user afresh, as it does in production.

The shared `app` fixture holds one app context for a whole test, so Flask's `g` (where Flask-Login
caches the request's user) would outlive a request and hand one request's user to the next; a
session that should have ended could then look alive, or a dead one look ended, by accident."""

from __future__ import annotations

import pytest
from flask import g


@pytest.fixture(autouse=True)
def fresh_user_per_request(request):
    if "app" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("app")

    def forget_cached_user():
        g.pop("_login_user", None)

    app.before_request_funcs.setdefault(None, []).insert(0, forget_cached_user)
    yield
