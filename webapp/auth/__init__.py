"""Log-in, log-out, roles for pages and bearer tokens for the API."""
from __future__ import annotations

import secrets
from functools import wraps

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from webapp.extensions import db, login
from webapp.models import ApiToken, User, utcnow

bp = Blueprint("auth", __name__, template_folder="templates")
login.login_view = "auth.login_page"
login.login_message = "Please log in to see this page."


@login.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


@bp.route("/login", methods=["GET", "POST"])
def login_page():
    form = LoginForm()
    if form.validate_on_submit():
        user = db.session.execute(db.select(User).filter_by(username=form.username.data)).scalar_one_or_none()
        if user is not None and user.is_active and user.check_password(form.password.data):
            login_user(user)
            target = request.args.get("next", "")
            # only local paths: an open redirect would let a link send a doctor elsewhere
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("review.home")
            return redirect(target)
        flash("Unknown user name or wrong password.", "error")
    return render_template("auth/login.html", form=form)



@bp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("auth.login_page"))


@bp.get("/health")
def health():
    db.session.execute(db.text("SELECT 1"))
    return {"status": "ok"}


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


# --- API tokens -------------------------------------------------------------------------------

def create_token(user: User, name: str = "") -> str:
    token = "medal_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user=user, token_hash=ApiToken.hash(token), name=name))
    db.session.commit()
    return token


def _token_user() -> User | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    row = db.session.execute(db.select(ApiToken).filter_by(token_hash=ApiToken.hash(header[7:].strip()),
                                                           revoked=False)).scalar_one_or_none()
    if row is None or not row.user.is_active:
        return None
    row.last_used_at = utcnow()
    db.session.commit()
    return row.user


def token_required(*roles: str):
    """API decorator: a valid bearer token, and one of the roles if any are named."""
    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            user = _token_user()
            if user is None:
                return jsonify(error="A valid bearer token is required.", status=401), 401
            if roles and not user.has_role(*roles):
                return jsonify(error=f"This needs the role {' or '.join(roles)}.", status=403), 403
            g.api_user = user
            return view(*args, **kwargs)
        return wrapped
    return decorate
