"""Bulk import of labeled or unlabeled images: ImageFolder trees, MedMNIST npz, DICOM folders."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from learning.decoding import encode_png
from webapp.clinical import records as clinical_records
from webapp.extensions import db
from webapp.upload.ingest import ImageMeta, IngestError, ingest
from webapp.upload.pseudonyms import pseudonym

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm", ".dicom"}
MANIFEST_NAMES = ("manifest.csv", "labels.csv")  # looked for beside the class folders


@dataclass
class ImportReport:
    created: int = 0
    existing: int = 0
    rejected: list[str] = field(default_factory=list)  # "name: reason", never patient data

    def line(self) -> str:
        return f"{self.created} imported, {self.existing} already present, {len(self.rejected)} rejected"


Item = tuple[str, bytes, str | None, ImageMeta]  # name, bytes, label, metadata


def _store(
    items: Iterable[Item], split: str, origin: str, gold_ids: list[int] | None = None, batch: int = 200
) -> ImportReport:
    report = ImportReport()
    for count, (name, data, label, meta) in enumerate(items, start=1):
        try:
            image, created = ingest(data, origin=origin, split=split, reference_label=label, meta=meta)
        except IngestError as error:
            report.rejected.append(f"{name}: {error}")
            continue
        report.created += created
        report.existing += not created
        if gold_ids is not None:
            db.session.flush()
            gold_ids.append(image.id)
        if count % batch == 0:
            db.session.commit()
    db.session.commit()
    return report


@dataclass(frozen=True)
class ManifestRow:
    label: str | None
    patient_id: str | None
    clinical: dict | None = None  # the clinical columns as written; validated when the image is stored


def read_manifest(path: Path) -> dict[str, ManifestRow]:
    """`filename,label,patient_id` plus any clinical columns (webapp/clinical/records.py FIELDS, e.g.
    temperature_c, crp_mg_l); other columns are ignored; filenames relative to the tree."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "filename" not in reader.fieldnames:
            raise IngestError(f"{path.name} needs a header with at least: filename,label,patient_id")
        return {
            row["filename"].strip(): ManifestRow(
                (row.get("label") or "").strip() or None,
                (row.get("patient_id") or "").strip() or None,
                clinical_records.raw_from_row(row) or None,
            )
            for row in reader
            if (row.get("filename") or "").strip()
        }


def default_manifest(root: Path) -> Path | None:
    for name in MANIFEST_NAMES:
        if (root / name).is_file():
            return root / name
    return None


def from_image_folder(
    root: Path,
    split: str,
    origin: str = "import",
    manifest: Path | None = None,
    site: str | None = None,
    only: set[str] | None = None,
    keep_labels: bool | None = None,
    ids: list[int] | None = None,
) -> ImportReport:
    """root/<class name>/<image files>; with split 'pool' the labels are not kept unless
    `keep_labels` says so (`ids` then collects the image ids, e.g. to seed a gold set). A manifest
    gives each file's label and patient id (stored only as a pseudonym); an image without a
    patient id is its own patient. `only` limits the import to those relative file names."""
    rows = read_manifest(manifest) if manifest is not None else {}
    keep = split == "train" if keep_labels is None else keep_labels

    def items() -> Iterator[Item]:
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            relative = path.relative_to(root).as_posix()
            if only is not None and relative not in only:
                continue
            row = rows.get(relative, ManifestRow(None, None))
            label = (row.label or path.parent.name) if keep else None
            meta = ImageMeta(
                site=site, patient_key=pseudonym(row.patient_id) if row.patient_id else None, clinical=row.clinical
            )
            yield relative, path.read_bytes(), label, meta

    return _store(items(), split, origin, gold_ids=ids)


def from_dicom_folder(root: Path, split: str = "pool", origin: str = "import") -> ImportReport:
    """Every DICOM file below root (any extension: PACS exports often have none)."""

    def items() -> Iterator[Item]:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                if len(data) > 132 and data[128:132] == b"DICM":
                    yield path.name, data, None, ImageMeta()

    return _store(items(), split, origin)


def npz_items(
    path: Path,
    part: str,
    class_names: list[str],
    start: int = 0,
    count: int | None = None,
    shuffle_seed: int | None = None,
) -> Iterator[Item]:
    """MedMNIST layout: `<part>_images` (N, H, W) uint8 and `<part>_labels` (N, 1).

    With `shuffle_seed`, the slice is taken from a seeded permutation: some copies are sorted
    by class, and a plain slice of them would hold one class only."""
    with np.load(path) as data:
        images, labels = data[f"{part}_images"], data[f"{part}_labels"].reshape(-1)
    order = (
        np.arange(len(images)) if shuffle_seed is None else np.random.default_rng(shuffle_seed).permutation(len(images))
    )
    stop = len(images) if count is None else min(len(images), start + count)
    for index in order[start:stop]:
        image = images[index]
        if image.ndim == 3:  # RGB MedMNIST variants
            image = image.mean(axis=2).astype(np.uint8)
        yield f"{part}[{index}]", encode_png(image), class_names[int(labels[index])], ImageMeta()


def from_npz(
    path: Path,
    part: str,
    split: str,
    class_names: list[str],
    start: int = 0,
    count: int | None = None,
    origin: str = "import",
    keep_labels: bool = True,
    gold_ids: list[int] | None = None,
    shuffle_seed: int | None = None,
) -> ImportReport:
    items = npz_items(path, part, class_names, start, count, shuffle_seed)
    if not keep_labels:
        items = ((name, data, None, meta) for name, data, _, meta in items)
    return _store(items, split, origin, gold_ids=gold_ids)
