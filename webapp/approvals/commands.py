"""`medal rollback`: put the previous model back as champion."""

from __future__ import annotations

import click


@click.command()
@click.option("--reason", required=True, help="why, for the history")
@click.option("--user", "username", default=None, help="who (default: system)")
@click.option(
    "--expected-champion",
    type=int,
    default=None,
    help="refuse unless this version is champion now (guards against a double rollback)",
)
def rollback(reason: str, username: str | None, expected_champion: int | None) -> None:
    """Put `champion` back on `previous`, recorded like a promotion."""
    from webapp.approvals import DecisionError, decisions
    from webapp.extensions import db
    from webapp.models import User

    user = None
    if username:
        user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none()
        if user is None:
            raise click.ClickException(f"No user {username!r}.")
    try:
        event = decisions.rollback(user, reason, expected_champion=expected_champion)
    except DecisionError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Rolled back: version {event.model_version} is champion, version {event.from_version} is previous.")
