"""The DB → ML boundary: label and image rows in, plain dataclasses out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, text

from learning.data import LabeledImage
from webapp.classes import catalog
from webapp.extensions import db
from webapp.models import REVIEW_LABEL, GoldItem, Image, Label, LabelAmendment


@dataclass(frozen=True)
class Example:
    """One labeled image as training and evaluation code sees it."""

    image_id: int
    path: str
    label: str
    sha256: str
    label_id: int | None  # None for labels that came with an import
    source: str  # doctor | import | gold
    group: str = ""  # the patient: their pseudonym, or the image itself when unknown
    site: str | None = None

    def labeled(self, class_names: list[str]) -> LabeledImage:
        return LabeledImage(self.path, class_names.index(self.label), group=self.group, site=self.site)


@dataclass(frozen=True)
class PoolImage:
    image_id: int
    path: str
    site: str | None = None


def _abs(store, relative: str) -> str:
    return str(store.path(relative))


def patient_group(image: Image) -> str:
    """Images of one patient share a group, so no split puts that patient on both sides."""
    return image.patient_key or f"image:{image.id}"


def doctor_examples(store, class_names: list[str]) -> list[Example]:
    """The review label of every non-gold image (gold never trains), renamed classes mapped. Labels
    from before one-label-per-image (channel "double") stay stored but do not train: the first stands.
    An "unsure" answer does not train either: the doctor could not decide."""
    renamed = catalog.aliases()
    newest = (
        db.select(Label.image_id, func.max(Label.id).label("label_id"))
        .where(text(REVIEW_LABEL))
        .group_by(Label.image_id)
        .subquery()
    )
    rows = db.session.execute(
        db.select(Label, Image)
        .join(newest, Label.id == newest.c.label_id)
        .join(Image, Image.id == Label.image_id)
        .where(Image.is_gold.is_(False), Label.unsure.is_(False))
        .order_by(Label.id)
    ).all()
    amended = amended_labels()  # a doctor's amendment of a confirmed report replaces the review label
    return [
        Example(
            image.id, _abs(store, image.path), name, image.sha256, label.id, "doctor", patient_group(image), image.site
        )
        for label, image in rows
        if (name := catalog.canonical(amended.get(image.id, label.label), renamed)) in class_names
    ]


def amended_labels() -> dict[int, str]:
    """image id -> the newest amended label of its report (webapp/reports/study.py amend)."""
    newest = db.select(func.max(LabelAmendment.id)).group_by(LabelAmendment.image_id)
    rows = db.session.execute(
        db.select(LabelAmendment.image_id, LabelAmendment.label).where(LabelAmendment.id.in_(newest))
    ).all()
    return {image_id: label for image_id, label in rows}


def imported_examples(store, class_names: list[str]) -> list[Example]:
    """Images that arrived labeled (the initial training set), gold excluded."""
    renamed = catalog.aliases()
    rows = db.session.execute(
        db.select(Image)
        .where(Image.split == "train", Image.is_gold.is_(False), Image.reference_label.is_not(None))
        .order_by(Image.id)
    ).scalars()
    return [
        Example(image.id, _abs(store, image.path), name, image.sha256, None, "import", patient_group(image), image.site)
        for image in rows
        if (name := catalog.canonical(image.reference_label, renamed)) in class_names
    ]


def pool_images(store) -> list[PoolImage]:
    """Unlabeled, non-gold images awaiting review."""
    labeled = db.select(Label.image_id)
    rows = db.session.execute(
        db.select(Image.id, Image.path, Image.site)
        .where(Image.split == "pool", Image.is_gold.is_(False), Image.id.not_in(labeled))
        .order_by(Image.id)
    ).all()
    return [PoolImage(image_id, _abs(store, path), site) for image_id, path, site in rows]


def training_films_per_site() -> dict[str | None, int]:
    """How many films of each site can train: imported with a label, or labeled in review (gold
    excluded, as it never trains)."""
    labeled = db.select(Label.image_id).where(text(REVIEW_LABEL), Label.unsure.is_(False))
    rows = db.session.execute(
        db.select(Image.site, func.count(Image.id))
        .where(
            Image.is_gold.is_(False),
            ((Image.split == "train") & Image.reference_label.is_not(None)) | Image.id.in_(labeled),
        )
        .group_by(Image.site)
    ).all()
    return {site: count for site, count in rows}


def gold_examples(store) -> list[Example]:
    """The adjudicated gold set: final labels only, renamed classes mapped."""
    renamed = catalog.aliases()
    rows = db.session.execute(
        db.select(GoldItem, Image)
        .join(Image, Image.id == GoldItem.image_id)
        .where(GoldItem.status == "final")
        .order_by(GoldItem.image_id)
    ).all()
    return [
        Example(
            image.id,
            _abs(store, image.path),
            catalog.canonical(item.final_label, renamed),
            image.sha256,
            None,
            "gold",
            patient_group(image),
            image.site,
        )
        for item, image in rows
    ]


def labels_since(moment: datetime | None) -> tuple[int, datetime | None]:
    """How many labels arrived after `moment` (all of them when None), and when the first of them did.
    "Unsure" answers are not counted: nothing trains on them, so they never call for a round."""
    query = db.select(func.count(Label.id), func.min(Label.created_at)).where(Label.unsure.is_(False))
    if moment is not None:
        query = query.where(Label.created_at > moment)
    count, first = db.session.execute(query).one()
    return int(count), first
