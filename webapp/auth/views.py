"""Log-in and log-out pages, and the health check."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from webapp import audit
from webapp.auth.access import landing
from webapp.auth.redirects import safe_next
from webapp.extensions import db, limiter, login
from webapp.models import User, utcnow
from webapp.services import services

bp = Blueprint("auth", __name__, template_folder="templates")
login.login_view = "auth.login_page"
login.login_message = "Please log in to see this page."
FAILED = "Unknown user name or wrong password. After {n} wrong passwords in a row an account waits {minutes} minutes."
_dummy_hash: str | None = None


@login.user_loader
def load_user(user_id: str) -> User | None:
    """The session's user, if the cookie's generation is still the user's: log-out, a new password
    or a new role bump it, and every earlier cookie stops working."""
    ident, _, generation = user_id.partition(":")
    if not (ident.isdigit() and generation.isdigit()) or len(ident) > 18 or len(generation) > 18:
        return None
    user = db.session.get(User, int(ident))
    if user is None or (user.session_generation or 0) != int(generation):
        return None
    return user


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


def _login_limit() -> str:
    return services().settings.security.login_rate_limit


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    _login_limit,
    methods=["POST"],
    deduct_when=lambda response: response.status_code != 302,
    error_message="Too many log-in attempts from this address; wait a minute and try again.",
)
def login_page():
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.username.data, form.password.data)
        if user is not None:
            session.clear()  # nothing from before the log-in carries over
            login_user(user)
            return redirect(safe_next(request.args.get("next"), url_for(landing(user))))
        security = services().settings.security
        flash(FAILED.format(n=security.lockout_failures, minutes=f"{security.lockout_minutes:g}"), "error")
    return render_template("auth/login.html", form=form)


def authenticate(username: str, password: str) -> User | None:
    """The user, if the password is right and the account active and not waiting out a lockout.
    Every path checks one slow hash, so the time taken does not tell a known name from an unknown."""
    user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none()
    if user is None:
        check_password_hash(_dummy(), password)
        return None
    right = user.check_password(password)
    now = utcnow()
    if user.locked_until is not None and user.locked_until > now:
        return None
    if right and user.is_active:
        if user.failed_logins or user.locked_until:
            user.failed_logins, user.locked_until = 0, None
            db.session.commit()
        return user
    if not right:
        _count_failure(user, now)
    return None


def _count_failure(user: User, now) -> None:
    """Counted in the database, so every web process sees the same count."""
    security = services().settings.security
    db.session.execute(db.update(User).where(User.id == user.id).values(failed_logins=User.failed_logins + 1))
    db.session.refresh(user)
    if user.failed_logins >= security.lockout_failures:
        user.failed_logins, user.locked_until = 0, now + timedelta(minutes=security.lockout_minutes)
        audit.record(
            audit.Kind.ACCOUNT_LOCKED, None, details={"user": user.username, "minutes": security.lockout_minutes}
        )
    db.session.commit()


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:  # made with the current default method, so it costs what a real check costs
        _dummy_hash = generate_password_hash("not a password of anyone")
    return _dummy_hash


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        current_user.end_sessions()  # a copy of the cookie kept elsewhere stops working too
        db.session.commit()
    logout_user()
    session.clear()
    return redirect(url_for("auth.login_page"))


@bp.get("/health")
def health():
    db.session.execute(db.text("SELECT 1"))
    return {"status": "ok"}


from webapp.auth import profile  # noqa: E402,F401  (the profile page's route, on this blueprint)
