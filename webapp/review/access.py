"""Who may label: the route decorators of the labeling pages and API routes (security.label_roles)."""

from __future__ import annotations

from functools import wraps

from flask import g
from flask_login import current_user, login_required

from webapp.auth.roles import token_required
from webapp.review.queue import require_labeler


def labelers_page(view):
    """Page decorator: logged in, and a role listed in security.label_roles (admins only if listed)."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        require_labeler(current_user)
        return view(*args, **kwargs)

    return wrapped


def labelers_api(view):
    """API decorator: a valid bearer token of a role listed in security.label_roles."""

    @wraps(view)
    @token_required()
    def wrapped(*args, **kwargs):
        require_labeler(g.api_user)
        return view(*args, **kwargs)

    return wrapped
