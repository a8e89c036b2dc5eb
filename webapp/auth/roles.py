"""Who may do what: the page decorator (session log-in) and the API decorator (bearer token)."""

from __future__ import annotations

from functools import wraps

from flask import abort, g
from flask_login import current_user, login_required

from webapp.auth.tokens import token_user
from webapp.errors import Problem


def roles_required(*roles: str):
    """Page decorator: logged in and holding one of the roles (admins hold all)."""

    def decorate(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


def token_required(*roles: str):
    """API decorator: a valid bearer token, and one of the roles if any are named."""

    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            user = token_user()
            if user is None:
                raise Problem("A valid bearer token is required.", 401)
            if roles and not user.has_role(*roles):
                raise Problem(f"This needs the role {' or '.join(roles)}.", 403)
            g.api_user = user
            return view(*args, **kwargs)

        return wrapped

    return decorate
