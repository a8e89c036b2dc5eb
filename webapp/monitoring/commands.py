"""`medal drift`: measure drift statistics now, and print which groups drift."""

from __future__ import annotations

import click


@click.group()
def drift() -> None:
    """Drift of inputs and predictions per site, age band and sex."""


@drift.command()
@click.option("--version", type=int, default=None, help="model version (default: the champion)")
@click.option("--limit", type=int, default=None, help="at most this many new images (default: drift.batch_images)")
def measure(version: int | None, limit: int | None) -> None:
    """Measure the champion's training data (once) and images not yet measured."""
    from webapp.inference.threads import cpu_turn
    from webapp.monitoring import drift as service
    from webapp.services import services

    with cpu_turn(services().settings.home):  # the worker's jobs and other commands take turns
        done = service.measure(version, limit)
    click.echo(
        f"Version {done['version']}: measured {done['reference']} training images and {done['images']} others "
        f"in {done['seconds']} s."
    )


@drift.command()
def show() -> None:
    """Each group's status against the champion's training data."""
    from webapp.monitoring import drift as service

    found = service.report()
    if found["status"] != "measured":
        click.echo(f"Model version {found['model_version']}: not measured yet (run `medal drift measure`).")
        return
    click.echo(f"Reference: model version {found['model_version']}, {found['reference']['images']} training images.")
    for group in found["groups"]:
        what = ", ".join(group.get("drifting_features", [])) if group["drifting"] else ""
        click.echo(
            f"{group['dimension']:9} {group['group']:24} {group['images']:6}  {group['status']}  {what}".rstrip()
        )
