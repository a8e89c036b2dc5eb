"""`medal score`: score the unlabeled pool with a model version."""

from __future__ import annotations

import click


@click.command()
@click.option("--version", type=int, default=None, help="model version (default: the champion)")
def score(version: int | None) -> None:
    """Score the unlabeled pool for the review queue."""
    from webapp.inference import scoring
    from webapp.inference.threads import cpu_turn
    from webapp.services import services

    with cpu_turn(services().settings.home):  # the worker's jobs and other commands take turns
        result = scoring.score(version)
    click.echo(f"Scored {result['images']} pool images with version {result['version']} in {result['seconds']} s.")
