"""`medal pacs pull` and `medal pacs push`: the hospital PACS over DICOMweb."""

from __future__ import annotations

import click

from webapp.errors import Problem


@click.group("pacs")
def pacs() -> None:
    """Pull new CR/DX studies from the PACS (DICOMweb) and push heat maps back."""


@pacs.command("pull")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="StudyDate on or after this day (default: the last successful pull, less pacs.lookback_days)",
)
def pull(since) -> None:
    """Query the PACS (QIDO-RS) and pull studies not pulled before (WADO-RS) into the review pool."""
    from webapp.integration import pacs as service

    try:
        report = service.pull(since.date() if since else None)
    except Problem as error:
        raise click.ClickException(str(error)) from None
    for reason, count in sorted(report.refused.items()):
        click.echo(f"refused {count}: {reason}", err=True)
    click.echo(f"{report.line()} ({report.seconds:.1f} s)")


@pacs.command("push")
@click.argument("image_id", type=click.IntRange(1, 2**31 - 1))
def push(image_id: int) -> None:
    """Store the image's heat map in its original PACS study as a DICOM Secondary Capture (STOW-RS)."""
    from webapp.integration import pacs as service

    try:
        pushed = service.push(image_id)
    except Problem as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"Stored the heat map of image {pushed.image_id} (model version {pushed.model_version}) "
        "in its study in the PACS as a Secondary Capture."
    )
