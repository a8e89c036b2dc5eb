"""A study's priors: the same patient's other studies, found by the keyed pseudonym (never an
identifier), each with its date, final label and the model's call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_

from webapp.errors import Problem
from webapp.extensions import db
from webapp.gold import goldset
from webapp.inference import predictions
from webapp.models import GoldItem, Image, Prediction
from webapp.reports import study

SHOWN = 10  # the strip beside the viewer; older studies are counted ("and N more")


@dataclass(frozen=True)
class Study:
    """One study as the strip and the side-by-side view describe it."""

    image_id: int
    date: datetime  # the upload time: uploads keep no study date (de-identification removes DICOM dates)
    final_label: str | None  # the doctor's label, its amendment, the gold label or the import's label
    label_source: str | None  # "doctor", "amended", "gold", "import"; None while unlabeled
    predicted_class: str | None  # the model's latest call; None where no model has predicted it
    probabilities: dict[str, float] | None  # for the call in words (doubt shown as doubt)
    confidence: float | None
    model_version: int | None
    prediction_id: int | None

    def to_dict(self) -> dict:
        """For the API: identifiers, never display names."""
        return {
            "id": self.image_id,
            "date": self.date.isoformat() + "Z",
            "final_label": self.final_label,
            "predicted_class": self.predicted_class,
        }


@dataclass(frozen=True)
class Priors:
    shown: list[Study]  # earlier first
    more: int  # older studies beyond those shown

    @property
    def total(self) -> int:
        return len(self.shown) + self.more


NONE = Priors([], 0)


class PriorError(Problem):
    """A comparison that cannot be shown."""


def _visible():
    """Gold images awaiting their blind reads do not exist outside the gold-read flow."""
    return or_(Image.is_gold.is_(False), GoldItem.status == "final")


def of(image: Image, limit: int = SHOWN) -> Priors:
    """The patient's other studies: the `limit` newest, shown earlier first, and how many more there are.
    One query on the indexed patient_key finds them and counts the rest; an image without a
    patient_key has none."""
    if not image.patient_key:
        return NONE
    rows = db.session.execute(
        db.select(Image, func.count().over().label("total"))
        .outerjoin(GoldItem, GoldItem.image_id == Image.id)
        .where(Image.patient_key == image.patient_key, Image.id != image.id, _visible())
        .order_by(Image.created_at.desc(), Image.id.desc())
        .limit(limit)
    ).all()
    if not rows:
        return NONE
    images = [row[0] for row in reversed(rows)]
    calls = _latest_predictions([i.id for i in images])
    return Priors([_study(i, calls.get(i.id)) for i in images], rows[0].total - len(rows))


def _latest_predictions(image_ids: list[int]) -> dict[int, Prediction]:
    newest = db.select(func.max(Prediction.id)).where(Prediction.image_id.in_(image_ids)).group_by(Prediction.image_id)
    found = db.session.execute(db.select(Prediction).where(Prediction.id.in_(newest))).scalars()
    return {prediction.image_id: prediction for prediction in found}


def _study(image: Image, call: Prediction | None) -> Study:
    label, source = final_label(image)
    return Study(
        image.id,
        image.created_at,
        label,
        source,
        call.predicted_class if call else None,
        dict(call.probabilities) if call else None,
        call.confidence if call else None,
        call.model_version if call else None,
        call.id if call else None,
    )


def summary(image: Image) -> Study:
    return _study(image, predictions.latest(image.id))


def final_label(image: Image) -> tuple[str | None, str | None]:
    """The study's final label as its report states it (webapp/reports/study.py: review label or gold
    label, replaced by the newest amendment), else the label it was imported with; and its source."""
    confirmed = study.confirmation(image)
    if confirmed.status == study.AMENDED:
        return confirmed.label, "amended"
    if confirmed.status == study.FINAL:
        return confirmed.label, "gold" if image.is_gold else "doctor"
    if image.reference_label:
        return image.reference_label, "import"
    return None, None


def same_patient(image_id: int, other_id: int) -> tuple[Image, Image]:
    """Both studies for the side-by-side view, or a 404 unless they are two studies of one patient:
    the view never opens another patient's film (nor a gold image awaiting its reads), and its answer
    is the same whether the other film is missing or someone else's."""
    image = goldset.visible_image(image_id)
    other = db.session.get(Image, other_id)
    if (
        other is None
        or other.id == image.id
        or goldset.is_blind(other)
        or not image.patient_key
        or other.patient_key != image.patient_key
    ):
        raise PriorError(f"Study {image_id} has no other study {other_id} of the same patient.", 404)
    return image, other
