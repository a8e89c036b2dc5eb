"""`medal users` and `medal tokens`; every change of who may do what lands in the history."""

from __future__ import annotations

import click

from webapp import audit
from webapp.auth import signatures
from webapp.auth.signatures import Signer
from webapp.errors import Problem
from webapp.extensions import db
from webapp.models import ROLES, User, utcnow


def _user(username: str) -> User:
    user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none()
    if user is None:
        raise click.ClickException(f"No user {username!r}.")
    return user


@click.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--adjudicator", is_flag=True, help="may settle disagreements on gold images")
@click.option("--full-name", help='as it signs reports, e.g. "Dr Ana Rossi" (default: the username)')
@click.option("--title", "job_title", help='the job title under the signature, e.g. "Consultant radiologist"')
def users_create(
    username: str, role: str, password: str, adjudicator: bool, full_name: str | None, job_title: str | None
) -> None:
    if db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none():
        raise click.ClickException(f"User {username!r} already exists.")
    if len(password) < 8:
        raise click.ClickException("The password needs at least 8 characters.")
    user = User(username=username, role=role, can_adjudicate=adjudicator)
    user.set_password(password)
    _sign_as(user, full_name, job_title)  # checked before the user is added: a refusal stores nothing
    db.session.add(user)
    db.session.flush()
    audit.record(audit.Kind.USER_CREATED, None, details={"user": username, "role": role, "adjudicator": adjudicator})
    db.session.commit()
    click.echo(f"Created {role} {username}.")


@users.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
def users_set_role(username: str, role: str) -> None:
    """Give a user another role; their sessions end, so the new role applies at once."""
    user = _user(username)
    if user.role == role:
        click.echo(f"{username} is already {role}.")
        return
    before, user.role = user.role, role
    user.end_sessions()
    audit.record(audit.Kind.ROLE_CHANGED, None, details={"user": username, "from": before, "to": role})
    db.session.commit()
    click.echo(f"{username}: {before} -> {role}.")


@users.command("set-name")
@click.argument("username")
@click.option("--full-name", required=True, help='as it signs reports, e.g. "Dr Ana Rossi"; "" clears it')
@click.option("--title", "job_title", help='the job title under the signature, e.g. "Consultant radiologist"')
def users_set_name(username: str, full_name: str, job_title: str | None) -> None:
    """Set how a user signs study reports (issued PDFs keep the name they were signed with)."""
    user = _user(username)
    signer = _sign_as(user, full_name, job_title if job_title is not None else user.job_title)
    db.session.commit()
    click.echo(f"{username} signs reports as: {signer}.")


def _sign_as(user: User, full_name: str | None, job_title: str | None) -> Signer:
    try:
        return signatures.set_signature(user, full_name, job_title)
    except Problem as error:
        raise click.ClickException(str(error)) from None


@users.command("deactivate")
@click.argument("username")
def users_deactivate(username: str) -> None:
    """Stop a user logging in or using their tokens; their labels and history stay."""
    user = _user(username)
    if not user.active:
        click.echo(f"{username} is already deactivated.")
        return
    user.active = False
    user.end_sessions()
    audit.record(audit.Kind.USER_DEACTIVATED, None, details={"user": username, "role": user.role})
    db.session.commit()
    click.echo(f"Deactivated {username}.")


@click.group()
def tokens() -> None:
    """Manage API tokens."""


@tokens.command("create")
@click.argument("username")
@click.option("--name", default="cli", help="a note on what the token is for")
@click.option("--days", type=click.IntRange(min=1, max=3650), help="valid this many days (default security.token_days)")
def tokens_create(username: str, name: str, days: int | None) -> None:
    """Create a bearer token; it is printed once, on the last line."""
    from webapp.auth.tokens import create_token

    user = _user(username)
    token = create_token(user, name, days=days)
    click.echo(f"Token for {username} ({user.role}); store it now, it is not shown again:")
    click.echo(token)


@tokens.command("list")
def tokens_list() -> None:
    """Every token with its owner, dates and state; never the secret."""
    from webapp.auth.tokens import list_tokens

    now = utcnow()
    click.echo(f"{'id':>4}  {'user':<16} {'name':<16} {'created':<16} {'expires':<16} {'last used':<16} state")
    for row in list_tokens():
        state = "revoked" if row.revoked else "expired" if row.expires_at <= now else "active"
        click.echo(
            f"{row.id:>4}  {row.user.username:<16} {row.name:<16} {_when(row.created_at)} {_when(row.expires_at)} "
            f"{_when(row.last_used_at)} {state}"
        )


@tokens.command("revoke")
@click.argument("token_id", type=click.IntRange(min=1, max=2**62))
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by the id `medal tokens list` shows; it stops working at once."""
    from webapp.auth.tokens import revoke_token

    try:
        row = revoke_token(token_id)
    except Problem as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Revoked token {row.id} ({row.user.username}, {row.name}).")


def _when(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment is not None else f"{'-':<16}"
