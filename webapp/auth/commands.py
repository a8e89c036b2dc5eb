"""`medal users` and `medal tokens`."""

from __future__ import annotations

import click

from webapp.extensions import db
from webapp.models import ROLES, User


@click.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--adjudicator", is_flag=True, help="may settle disagreements on gold images")
def users_create(username: str, role: str, password: str, adjudicator: bool) -> None:
    if db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none():
        raise click.ClickException(f"User {username!r} already exists.")
    if len(password) < 8:
        raise click.ClickException("The password needs at least 8 characters.")
    user = User(username=username, role=role, can_adjudicate=adjudicator)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo(f"Created {role} {username}.")


@click.group()
def tokens() -> None:
    """Manage API tokens."""


@tokens.command("create")
@click.argument("username")
@click.option("--name", default="cli", help="a note on what the token is for")
def tokens_create(username: str, name: str) -> None:
    """Create a bearer token; it is printed once, on the last line."""
    from webapp.auth.tokens import create_token

    user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none()
    if user is None:
        raise click.ClickException(f"No user {username!r}.")
    token = create_token(user, name)
    click.echo(f"Token for {username} ({user.role}); store it now, it is not shown again:")
    click.echo(token)
