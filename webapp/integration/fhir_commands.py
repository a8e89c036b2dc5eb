"""`medal fhir push ID`: send a study's FHIR bundle to the hospital's FHIR server (fhir.server_url)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from webapp.errors import Problem


@click.group()
def fhir() -> None:
    """FHIR R4 export of studies."""


@fhir.command("push")
@click.argument("image_id", type=click.IntRange(1, 2**31 - 1))
@with_appcontext
def push(image_id: int) -> None:
    """POST study IMAGE_ID's bundle (a transaction) to fhir.server_url."""
    from webapp.integration import fhir as export

    try:
        status, _ = export.push(image_id)
    except Problem as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Study {image_id} sent to the FHIR server: HTTP {status}.")
