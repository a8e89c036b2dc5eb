"""`medal import`: bulk import of labeled or unlabeled images."""

from __future__ import annotations

from pathlib import Path

import click

from webapp.errors import Problem
from webapp.services import services


@click.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "kind",
    type=click.Choice(["folder", "npz", "dicom"]),
    default=None,
    help="default: npz for .npz files, dicom for a folder of DICOM files, else folder",
)
@click.option(
    "--split",
    type=click.Choice(["train", "pool"]),
    default="pool",
    show_default=True,
    help="train: labeled (folder names / npz labels are the classes); pool: to review",
)
@click.option("--part", default="train", show_default=True, help="npz part: train, val or test")
@click.option("--start", default=0, type=int)
@click.option("--limit", default=None, type=int)
@click.option("--shuffle-seed", default=None, type=int, help="npz: slice a seeded permutation")
@click.option(
    "--manifest",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="folder: CSV filename,label,patient_id (default: manifest.csv or labels.csv in SOURCE)",
)
@click.option("--site", default=None, help="the site (hospital, ward) the images come from")
def import_images(
    source: Path,
    kind: str | None,
    split: str,
    part: str,
    start: int,
    limit: int | None,
    shuffle_seed: int | None,
    manifest: Path | None,
    site: str | None,
) -> None:
    """Import images: an ImageFolder tree, a MedMNIST-style npz, or a folder of DICOM files."""
    from webapp.classes import catalog
    from webapp.upload import importers

    names = services().class_names
    kind = kind or ("npz" if source.suffix == ".npz" else "folder")
    if kind == "npz":
        report = importers.from_npz(
            source, part, split, names, start, limit, keep_labels=split == "train", shuffle_seed=shuffle_seed
        )
    elif kind == "dicom":
        report = importers.from_dicom_folder(source, split)
    else:
        folders = {p.name for p in source.iterdir() if p.is_dir()} if split == "train" else set()
        unknown = {name for name in folders if catalog.resolve(name, names) is None}  # an old name maps
        if unknown:
            raise click.ClickException(f"Folders {sorted(unknown)} are not classes ({', '.join(names)}).")
        try:
            report = importers.from_image_folder(
                source, split, site=site, manifest=manifest or importers.default_manifest(source)
            )
        except Problem as error:
            raise click.ClickException(str(error)) from None
    for line in report.rejected[:20]:
        click.echo(f"rejected {line}", err=True)
    click.echo(report.line())
