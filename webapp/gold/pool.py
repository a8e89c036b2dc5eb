"""Which pool images can join the gold set, filtered as the engineer asks on the gold page."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from webapp.extensions import db
from webapp.models import Image, Label, Prediction

PAGE_SIZE = 120
NO_SITE = "-"  # the site filter's value for images that came without one
SHOWS = ("unreviewed", "unsure", "all")


@dataclass(frozen=True)
class PoolFilter:
    """What the engineer narrowed the candidate thumbnails to; travels in the query string."""

    predicted: str = ""  # the latest prediction's class; "" = any
    site: str = ""  # Image.site; "" = any, NO_SITE = none recorded
    # unreviewed (can become gold, unsure studies included) | unsure (only those) | all (reviewed ones
    # shown, not pickable)
    show: str = "unreviewed"
    page: int = 1

    @classmethod
    def from_request(cls, values) -> PoolFilter:
        show = values.get("show", "unreviewed")
        return cls(
            predicted=values.get("predicted", ""),
            site=values.get("site", ""),
            show=show if show in SHOWS else "unreviewed",
            page=max(1, values.get("page", 1, type=int) or 1),
        )

    def args(self, **changes) -> dict:
        """Query-string arguments for a link to this view (defaults left out)."""
        values = asdict(self) | changes
        return {key: value for key, value in values.items() if value != asdict(PoolFilter())[key]}


@dataclass
class Candidate:
    image: Image
    prediction: Prediction | None
    reviewed: bool  # a doctor's decided label: it cannot give a blind read
    unsure: bool = False  # a doctor answered "unsure": blind reads and adjudication settle it


def candidates(chosen: PoolFilter) -> tuple[list[Candidate], int]:
    """Images that could join the gold set under goldset.mark's rules (not trained on, not gold, no
    doctor's decided label: an "unsure" answer is an invitation), with their latest prediction;
    labeled ones too when asked to show all."""
    latest = (
        db.select(Prediction.image_id, db.func.max(Prediction.id).label("prediction_id"))
        .group_by(Prediction.image_id)
        .subquery()
    )
    reviewed = db.exists().where(Label.image_id == Image.id, Label.unsure.is_(False))
    unsure = db.exists().where(Label.image_id == Image.id, Label.unsure.is_(True))
    query = (
        db.select(Image, Prediction, reviewed.label("reviewed"), unsure.label("unsure"))
        .outerjoin(latest, latest.c.image_id == Image.id)
        .outerjoin(Prediction, Prediction.id == latest.c.prediction_id)
        .where(Image.split != "train", Image.is_gold.is_(False))
    )
    if chosen.show == "unreviewed":
        query = query.where(~reviewed)
    elif chosen.show == "unsure":
        query = query.where(unsure, ~reviewed)
    if chosen.predicted:
        query = query.where(Prediction.predicted_class == chosen.predicted)
    if chosen.site == NO_SITE:
        query = query.where(Image.site.is_(None))
    elif chosen.site:
        query = query.where(Image.site == chosen.site)
    total = db.session.execute(db.select(db.func.count()).select_from(query.subquery())).scalar_one()
    rows = db.session.execute(query.order_by(Image.id).limit(PAGE_SIZE).offset((chosen.page - 1) * PAGE_SIZE)).all()
    return [
        Candidate(image, prediction, bool(decided), bool(doubted)) for image, prediction, decided, doubted in rows
    ], total


def unsure_count() -> int:
    """Studies a doctor answered "unsure" that are not gold yet: they wait for a second opinion."""
    return db.session.execute(
        db.select(db.func.count(db.distinct(Label.image_id)))
        .join(Image, Image.id == Label.image_id)
        .where(Label.unsure.is_(True), Image.is_gold.is_(False))
    ).scalar_one()


def sites() -> list[str | None]:
    return list(
        db.session.execute(
            db.select(Image.site)
            .where(Image.split != "train", Image.is_gold.is_(False))
            .distinct()
            .order_by(Image.site)
        ).scalars()
    )
