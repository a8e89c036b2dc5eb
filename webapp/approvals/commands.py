"""`medal rollback`: put the previous model back as champion."""
import click


@click.command()
def rollback() -> None:
    """Put `champion` back on `previous`, recorded like a promotion."""
    raise click.ClickException("not built yet")
