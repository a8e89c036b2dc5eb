"""Bulk import of labeled or unlabeled images: ImageFolder trees, MedMNIST npz, DICOM folders."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from learning.data import encode_png
from webapp.extensions import db
from webapp.ingest import IngestError, ingest

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm", ".dicom"}


@dataclass
class ImportReport:
    created: int = 0
    existing: int = 0
    rejected: list[str] = field(default_factory=list)   # "name: reason", never patient data

    def line(self) -> str:
        return (f"{self.created} imported, {self.existing} already present, "
                f"{len(self.rejected)} rejected")


def _store(items: Iterable[tuple[str, bytes, str | None]], split: str, origin: str,
           gold_ids: list[int] | None = None, batch: int = 200) -> ImportReport:
    report = ImportReport()
    for count, (name, data, label) in enumerate(items, start=1):
        try:
            image, created = ingest(data, origin=origin, split=split, reference_label=label)
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


def from_image_folder(root: Path, split: str, origin: str = "import") -> ImportReport:
    """root/<class name>/<image files>; with split 'pool' the folder names are ignored."""
    def items() -> Iterator[tuple[str, bytes, str | None]]:
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                label = path.parent.name if split == "train" else None
                yield path.name, path.read_bytes(), label
    return _store(items(), split, origin)


def from_dicom_folder(root: Path, split: str = "pool", origin: str = "import") -> ImportReport:
    """Every DICOM file below root (any extension: PACS exports often have none)."""
    def items() -> Iterator[tuple[str, bytes, str | None]]:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                if len(data) > 132 and data[128:132] == b"DICM":
                    yield path.name, data, None
    return _store(items(), split, origin)


def npz_items(path: Path, part: str, class_names: list[str], start: int = 0, count: int | None = None,
              shuffle_seed: int | None = None) -> Iterator[tuple[str, bytes, str | None]]:
    """MedMNIST layout: `<part>_images` (N, H, W) uint8 and `<part>_labels` (N, 1).

    With `shuffle_seed`, the slice is taken from a seeded permutation: some copies are sorted
    by class, and a plain slice of them would hold one class only."""
    with np.load(path) as data:
        images, labels = data[f"{part}_images"], data[f"{part}_labels"].reshape(-1)
    order = np.arange(len(images)) if shuffle_seed is None else \
        np.random.default_rng(shuffle_seed).permutation(len(images))
    stop = len(images) if count is None else min(len(images), start + count)
    for index in order[start:stop]:
        image = images[index]
        if image.ndim == 3:  # RGB MedMNIST variants
            image = image.mean(axis=2).astype(np.uint8)
        yield f"{part}[{index}]", encode_png(image), class_names[int(labels[index])]


def from_npz(path: Path, part: str, split: str, class_names: list[str], start: int = 0,
             count: int | None = None, origin: str = "import", keep_labels: bool = True,
             gold_ids: list[int] | None = None, shuffle_seed: int | None = None) -> ImportReport:
    items = npz_items(path, part, class_names, start, count, shuffle_seed)
    if not keep_labels:
        items = ((name, data, None) for name, data, _ in items)
    return _store(items, split, origin, gold_ids=gold_ids)
