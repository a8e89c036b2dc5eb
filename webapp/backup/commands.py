"""`medal backup DIR` and `medal restore DIR`."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("target", type=click.Path(file_okay=False, path_type=Path))
def backup(target: Path) -> None:
    """Write a consistent copy of the database, the image store and the MLflow store into TARGET."""
    from webapp.backup import archive

    try:
        manifest = archive.backup(target)
    except archive.BackupError as error:
        raise click.ClickException(str(error)) from None
    counts = manifest["database"].get("counts") or {}
    click.echo(
        f"Backup in {target}: {len(manifest['files'])} files, {counts.get('image', '?')} images, "
        f"{counts.get('label', '?')} labels, aliases {manifest['mlflow']['aliases']}."
    )
    if manifest["mlflow"]["kind"] == "server":
        click.echo(manifest["mlflow"]["note"])


@click.command()
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="replace the data this MEDAL_HOME already holds")
def restore(source: Path, force: bool) -> None:
    """Verify the backup in SOURCE (checksums) and bring it back into this MEDAL_HOME."""
    from webapp.backup import archive

    try:
        done = archive.restore(source, force=force)
    except archive.BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"Restored the backup taken {done['created_at']}: {done['files']} files verified, aliases {done['aliases']}."
    )
