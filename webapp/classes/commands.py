"""`medal classes list|add|rename|remove`."""

from __future__ import annotations

import click

from webapp.classes import catalog
from webapp.errors import Problem
from webapp.services import services


@click.group()
def classes() -> None:
    """The classes doctors label with."""


def _configured() -> list[str]:
    return services().settings.class_names


@classes.command("list")
def list_classes() -> None:
    displays = catalog.displays(_configured())
    for name in catalog.current(_configured()):
        click.echo(f"{name}\t{displays[name]}\t{catalog.usage(name)} label(s)")
    for old, new in catalog.aliases().items():
        click.echo(f"{old} -> {new}\t(renamed)")


@classes.command("add")
@click.argument("name")
@click.option("--display", default=None, help='how pages show it, e.g. "COVID-19"')
def add(name: str, display: str | None) -> None:
    """Add a class: doctors can label with it at once; the next fine-tune grows the model's head."""
    try:
        row = catalog.add(name, _configured(), None, display)
    except Problem as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Added class {row.name} ({row.display}).")


@classes.command("rename")
@click.argument("old")
@click.argument("new")
def rename(old: str, new: str) -> None:
    """Rename a class; labels given under the old name map to the new one."""
    try:
        catalog.rename(old, new, _configured())
    except Problem as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Renamed {old} to {new}.")


@classes.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Remove a class no label uses (a class in use is refused)."""
    try:
        catalog.remove(name, _configured())
    except Problem as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Removed {name}.")
