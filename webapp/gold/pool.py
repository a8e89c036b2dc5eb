"""Which pool images can join the gold set, filtered as the engineer asks on the gold page."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from webapp.extensions import db
from webapp.models import Image, Label, Prediction

PAGE_SIZE = 120
NO_SITE = "-"  # the site filter's value for images that came without one


@dataclass(frozen=True)
class PoolFilter:
    """What the engineer narrowed the candidate thumbnails to; travels in the query string."""

    predicted: str = ""  # the latest prediction's class; "" = any
    site: str = ""  # Image.site; "" = any, NO_SITE = none recorded
    show: str = "unreviewed"  # unreviewed (can become gold) | all (reviewed ones shown, not pickable)
    page: int = 1

    @classmethod
    def from_request(cls, values) -> PoolFilter:
        show = values.get("show", "unreviewed")
        return cls(
            predicted=values.get("predicted", ""),
            site=values.get("site", ""),
            show=show if show in ("unreviewed", "all") else "unreviewed",
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
    reviewed: bool


def candidates(chosen: PoolFilter) -> tuple[list[Candidate], int]:
    """Images that could join the gold set under goldset.mark's rules (not trained on, not gold,
    no doctor's label), with their latest prediction; labeled ones too when asked to show all."""
    latest = (
        db.select(Prediction.image_id, db.func.max(Prediction.id).label("prediction_id"))
        .group_by(Prediction.image_id)
        .subquery()
    )
    reviewed = db.exists().where(Label.image_id == Image.id)
    query = (
        db.select(Image, Prediction, reviewed.label("reviewed"))
        .outerjoin(latest, latest.c.image_id == Image.id)
        .outerjoin(Prediction, Prediction.id == latest.c.prediction_id)
        .where(Image.split != "train", Image.is_gold.is_(False))
    )
    if chosen.show == "unreviewed":
        query = query.where(~reviewed)
    if chosen.predicted:
        query = query.where(Prediction.predicted_class == chosen.predicted)
    if chosen.site == NO_SITE:
        query = query.where(Image.site.is_(None))
    elif chosen.site:
        query = query.where(Image.site == chosen.site)
    total = db.session.execute(db.select(db.func.count()).select_from(query.subquery())).scalar_one()
    rows = db.session.execute(query.order_by(Image.id).limit(PAGE_SIZE).offset((chosen.page - 1) * PAGE_SIZE)).all()
    return [Candidate(image, prediction, bool(was_reviewed)) for image, prediction, was_reviewed in rows], total


def sites() -> list[str | None]:
    return list(
        db.session.execute(
            db.select(Image.site)
            .where(Image.split != "train", Image.is_gold.is_(False))
            .distinct()
            .order_by(Image.site)
        ).scalars()
    )
