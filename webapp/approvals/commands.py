"""`medal rollback`: put the previous model back as champion."""
import click


@click.command()
@click.option("--reason", required=True, help="why, for the history")
@click.option("--user", "username", default=None, help="who (default: system)")
def rollback(reason: str, username: str | None) -> None:
    """Put `champion` back on `previous`, recorded like a promotion."""
    from webapp import promotion
    from webapp.extensions import db
    from webapp.models import User

    user = None
    if username:
        user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none()
        if user is None:
            raise click.ClickException(f"No user {username!r}.")
    try:
        event = promotion.rollback(user, reason)
    except promotion.DecisionError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Rolled back: version {event.model_version} is champion, "
               f"version {event.from_version} is previous.")
