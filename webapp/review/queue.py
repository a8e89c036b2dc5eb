"""The review queue: which image a doctor sees next, short claims, and storing their answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import case
from sqlalchemy.exc import IntegrityError

from webapp.errors import Problem
from webapp.extensions import db
from webapp.inference import predictions
from webapp.models import (
    Claim,
    Image,
    Label,
    Prediction,
    QueryScore,
    Setting,
    User,
    utcnow,
)
from webapp.services import services

STRATEGY_KEY = "active_learning.strategy"


class LabelError(Problem):
    """A label that cannot be stored."""


@dataclass(frozen=True)
class SavedLabel:
    label: Label
    created: bool  # False when this doctor had already answered (a double submit)


def current_strategy() -> str:
    row = db.session.get(Setting, STRATEGY_KEY)
    return row.value if row is not None else services().settings.active_learning.strategy


def set_strategy(name: str, user: User) -> None:
    from learning.strategies import available

    if name not in available():
        raise LabelError(f"Unknown strategy {name!r}; choose one of {', '.join(available())}.")
    row = db.session.get(Setting, STRATEGY_KEY) or Setting(key=STRATEGY_KEY)
    row.value, row.updated_by_id, row.updated_at = name, user.id, utcnow()
    db.session.add(row)
    db.session.commit()


def _open_images():
    """Pool images nobody has labeled, not gold, not claimed by someone else right now."""
    labeled = db.select(Label.image_id)
    return db.select(Image).where(Image.split == "pool", Image.is_gold.is_(False), Image.id.not_in(labeled))


def next_for(user: User) -> Image | None:
    """The most informative open image for this doctor, claimed for a short while."""
    now = utcnow()
    db.session.execute(db.delete(Claim).where(Claim.expires_at < now))
    db.session.commit()
    mine = db.session.execute(
        _open_images()
        .join(Claim, Claim.image_id == Image.id)
        .where(Claim.user_id == user.id)
        .order_by(Claim.expires_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if mine is not None:
        return mine  # a reload shows the same image rather than skipping it
    version = services().registry.version_for("champion")
    score = (
        db.select(QueryScore.rank)
        .where(
            QueryScore.image_id == Image.id,
            QueryScore.model_version == version,
            QueryScore.strategy == current_strategy(),
        )
        .correlate(Image)
        .scalar_subquery()
    )
    confidence = (
        db.select(Prediction.confidence)
        .where(Prediction.image_id == Image.id)
        .order_by(Prediction.id.desc())
        .limit(1)
        .correlate(Image)
        .scalar_subquery()
    )
    claimed = db.select(Claim.image_id)
    query = (
        _open_images()
        .where(Image.id.not_in(claimed))
        .order_by(case((score.is_(None), 1), else_=0), score, confidence, Image.id)
        .limit(20)
    )
    seconds = services().settings.active_learning.claim_seconds
    for image in db.session.execute(query).scalars():
        db.session.add(Claim(image_id=image.id, user_id=user.id, expires_at=now + timedelta(seconds=seconds)))
        try:
            db.session.commit()
            return image
        except IntegrityError:  # another doctor claimed it a moment ago: try the next one
            db.session.rollback()
    return None


def submit(
    user: User,
    image_id: int,
    label: str,
    *,
    prediction_id: int | None = None,
    time_spent_ms: int | None = None,
    channel: str = "web",
) -> SavedLabel:
    class_names = services().class_names
    if label not in class_names:
        raise LabelError(f"Unknown class {label!r}; known classes: {', '.join(class_names)}.")
    image = db.session.get(Image, image_id)
    if image is None:
        raise LabelError(f"No image with id {image_id}.", 404)
    prediction = db.session.get(Prediction, prediction_id) if prediction_id else predictions.latest(image_id)
    if prediction is not None and prediction.image_id != image_id:
        raise LabelError("That prediction belongs to another image.")
    if time_spent_ms is not None and not 0 <= time_spent_ms <= 24 * 3600 * 1000:
        time_spent_ms = None  # a clock skew in the browser should not store nonsense
    row = Label(
        image_id=image_id,
        user_id=user.id,
        label=label,
        prediction=prediction,
        agreed=(prediction.predicted_class == label) if prediction else None,
        time_spent_ms=time_spent_ms,
        channel=channel,
    )
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:  # double submit: the first answer stands
        db.session.rollback()
        existing = db.session.execute(db.select(Label).filter_by(image_id=image_id, user_id=user.id)).scalar_one()
        return SavedLabel(existing, False)
    db.session.execute(db.delete(Claim).where(Claim.image_id == image_id))
    db.session.commit()
    return SavedLabel(row, True)


def label_to_dict(label: Label) -> dict:
    return {
        "id": label.id,
        "image_id": label.image_id,
        "label": label.label,
        "user": label.user.username,
        "prediction_id": label.prediction_id,
        "agreed": label.agreed,
        "time_spent_ms": label.time_spent_ms,
        "created_at": label.created_at.isoformat() + "Z",
    }
