"""The review queue: which image a doctor sees next, claims, skips, and storing their answer.

One image gets one review label. The database holds that rule twice over: a claim row per image
(its primary key) that is kept once the image is labeled, and a partial unique index on review
labels. A label is stored together with its claim turning "labeled", in one transaction.

A doctor may skip a served image: its claim is released for the next doctor and a Skip row keeps it
from being served to this doctor again. A doctor may also answer "unsure": the label is stored (the
image leaves the queue) but nothing learns from it, and the gold page offers it for blind reads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import case, or_
from sqlalchemy.exc import IntegrityError

from webapp import audit
from webapp.auth import access
from webapp.classes import catalog
from webapp.errors import Problem
from webapp.extensions import db, rows_changed
from webapp.gold import goldset
from webapp.inference import predictions
from webapp.models import (
    Claim,
    Image,
    Label,
    Prediction,
    QueryScore,
    Setting,
    Skip,
    User,
    utcnow,
)
from webapp.services import services

log = logging.getLogger(__name__)
STRATEGY_KEY = "active_learning.strategy"
HELD, LABELED, UNSHOWABLE = "held", "labeled", "unshowable"  # Claim.state
MAX_TEXT = 4000  # characters of findings, impression or comment: a long report, never a pasted file
TEXT_FIELDS = {"findings": "Findings", "impression": "Impression", "comment": "The comment"}


class LabelError(Problem):
    """A label that cannot be stored."""


@dataclass(frozen=True)
class SavedLabel:
    label: Label
    created: bool  # False when this doctor had already answered (a double submit)


@dataclass(frozen=True)
class Served:
    """An image the queue hands a doctor, with the prediction it is shown beside."""

    image: Image
    prediction: Prediction


def require_labeler(user: User) -> None:
    if not access.may_label(user):
        roles = " or ".join(access.label_roles())
        raise LabelError(f"Labels come from the role {roles}; a {user.role} account cannot label images.", 403)


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
    """Pool images nobody has labeled, not gold."""
    labeled = db.select(Label.image_id)
    return db.select(Image).where(Image.split == "pool", Image.is_gold.is_(False), Image.id.not_in(labeled))


def _held_by(user: User, now) -> Image | None:
    return db.session.execute(
        _open_images()
        .join(Claim, Claim.image_id == Image.id)
        .where(Claim.user_id == user.id, Claim.state == HELD, Claim.expires_at >= now)
        .order_by(Claim.expires_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def _skipped_by(user: User):
    return db.select(Skip.image_id).where(Skip.user_id == user.id)


def _best_unclaimed(now, user: User) -> tuple[Image, bool] | None:
    """The most informative open image nobody holds and this doctor has not skipped: (image, whether
    an expired claim is on it). Read fresh each time: a list read earlier goes stale as soon as other
    doctors claim."""
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
    row = db.session.execute(
        _open_images()
        .add_columns(Claim.image_id.is_not(None))
        .outerjoin(Claim, Claim.image_id == Image.id)
        .where(or_(Claim.image_id.is_(None), (Claim.state == HELD) & (Claim.expires_at < now)))
        .where(Image.id.not_in(_skipped_by(user)))
        # unscored and unpredicted images last on every database (NULLs sort differently)
        .order_by(case((score.is_(None), 1), else_=0), score, case((confidence.is_(None), 1), else_=0), confidence)
        .order_by(Image.id)
        .limit(1)
    ).first()
    return (row[0], bool(row[1])) if row is not None else None


def _claim(image_id: int, user: User, now, expired_claim: bool) -> bool:
    """Take the image for this doctor; False when another doctor took it first."""
    expires = now + timedelta(seconds=services().settings.active_learning.claim_seconds)
    if expired_claim:  # conditional: of two doctors taking over one expired claim, one wins
        taken = rows_changed(
            db.update(Claim)
            .where(Claim.image_id == image_id, Claim.state == HELD, Claim.expires_at < now)
            .values(user_id=user.id, expires_at=expires)
        )
        db.session.commit()
        return taken == 1
    try:
        db.session.execute(db.insert(Claim).values(image_id=image_id, user_id=user.id, expires_at=expires, state=HELD))
        db.session.commit()
        return True
    except IntegrityError:  # the primary key: someone claimed (or labeled) it a moment ago
        db.session.rollback()
        return False


def _park(image: Image, user: User, error: Exception) -> None:
    """An image that cannot be shown leaves the queue for everyone instead of blocking its holder."""
    db.session.rollback()
    log.warning("image %s cannot be shown in review (%s); taken out of the queue", image.id, type(error).__name__)
    db.session.execute(
        db.update(Claim).where(Claim.image_id == image.id, Claim.user_id == user.id).values(state=UNSHOWABLE)
    )
    db.session.commit()


def serve(user: User) -> Served | None:
    """The most informative open image for this doctor, claimed for a while, with its prediction.
    None only when no open image is left that nobody holds."""
    require_labeler(user)
    while True:
        now = utcnow()
        image = _held_by(user, now)  # a reload shows the same image rather than skipping it
        if image is None:
            found = _best_unclaimed(now, user)
            if found is None:
                return None
            if not _claim(found[0].id, user, now, expired_claim=found[1]):
                continue  # another doctor was quicker: look again, the queue has moved on
            image = found[0]
        services().server.current()  # no model serving is not this image's fault: that error stands
        try:
            prediction = predictions.predict(image)
            db.session.commit()
        except Exception as error:  # noqa: BLE001 - any failure of this one image must not block the queue
            _park(image, user, error)
            continue
        return Served(image, prediction)


def next_for(user: User) -> Image | None:
    served = serve(user)
    return served.image if served is not None else None


def skip(user: User, image_id: int) -> None:
    """Pass on a served image: its claim is released, so the next doctor can be served it at once,
    and this doctor is never served it again. Skipping it twice (a double click) records one skip."""
    require_labeler(user)
    if db.session.execute(db.select(Skip.id).filter_by(image_id=image_id, user_id=user.id)).first() is not None:
        return
    released = rows_changed(
        db.delete(Claim).where(Claim.image_id == image_id, Claim.user_id == user.id, Claim.state == HELD)
    )
    if released != 1:
        db.session.rollback()
        raise LabelError(f"Image {image_id} is not served to you: only the image in front of you can be skipped.", 409)
    db.session.add(Skip(image_id=image_id, user_id=user.id))
    audit.record(audit.Kind.SKIP, user, details={"image_id": image_id})
    db.session.commit()


def skips_of_image(image_id: int) -> int:
    """How many doctors passed on an image."""
    return db.session.execute(db.select(db.func.count(Skip.id)).filter_by(image_id=image_id)).scalar_one()


def skips_by(user: User) -> int:
    """How many images this doctor passed on, all told."""
    return db.session.execute(db.select(db.func.count(Skip.id)).filter_by(user_id=user.id)).scalar_one()


def report_texts(**given: str | None) -> dict[str, str | None]:
    """Findings, impression and comment as stored: trimmed, blank as none; too long is refused whole."""
    texts = {}
    for name, value in given.items():
        value = (value or "").strip()
        if len(value) > MAX_TEXT:
            raise LabelError(
                f"{TEXT_FIELDS[name]} has {len(value):,} characters; keep it to {MAX_TEXT:,}. Nothing was saved."
            )
        texts[name] = value or None
    return texts


def _label_taken(image_id: int, user: User) -> SavedLabel:
    """Why the claim could not turn "labeled": this doctor's own earlier answer, or another's."""
    mine = db.session.execute(db.select(Label).filter_by(image_id=image_id, user_id=user.id)).scalar_one_or_none()
    if mine is not None:
        return SavedLabel(mine, False)
    if db.session.execute(db.select(Label.id).filter_by(image_id=image_id).limit(1)).first() is not None:
        raise LabelError(f"Image {image_id} was already labeled by another doctor; the first answer stands.", 409)
    state = db.session.execute(db.select(Claim.state).filter_by(image_id=image_id)).scalar_one_or_none()
    if state == UNSHOWABLE:
        raise LabelError(f"Image {image_id} cannot be shown for review (its prediction failed).", 409)
    raise LabelError(f"Image {image_id} is being reviewed by another doctor right now.", 409)


def _take_for_label(image_id: int, user: User) -> bool:
    """The image's claim becomes this doctor's, labeled: theirs already, expired, or not there."""
    now = utcnow()
    taken = rows_changed(
        db.update(Claim)
        .where(Claim.image_id == image_id, Claim.state == HELD, or_(Claim.user_id == user.id, Claim.expires_at < now))
        .values(user_id=user.id, state=LABELED, expires_at=now)
    )
    if taken == 1:
        return True
    try:
        db.session.execute(db.insert(Claim).values(image_id=image_id, user_id=user.id, expires_at=now, state=LABELED))
        return True
    except IntegrityError:  # held by another doctor, labeled, or unshowable; nothing else was written yet
        db.session.rollback()
        return False


def submit(
    user: User,
    image_id: int,
    label: str,
    *,
    prediction_id: int | None = None,
    time_spent_ms: int | None = None,
    channel: str = "web",
    unsure: bool = False,
    findings: str | None = None,
    impression: str | None = None,
    comment: str | None = None,
) -> SavedLabel:
    """Store a doctor's answer. `unsure`: they could not decide; `label` is the class they leant to,
    or empty for the model's call."""
    require_labeler(user)
    texts = report_texts(findings=findings, impression=impression, comment=comment)
    class_names = services().class_names
    resolved = catalog.resolve(label, class_names) if label or not unsure else None
    if resolved is None and label:
        raise LabelError(f"Unknown class {label!r}; known classes: {', '.join(class_names)}.")
    image = db.session.get(Image, image_id)
    if image is None or goldset.is_blind(image):  # a gold image awaiting reads looks missing
        raise LabelError(f"No image with id {image_id}.", 404)
    if image.is_gold:
        raise LabelError(f"Image {image_id} is in the gold set; it takes no review labels.", 409)
    if prediction_id is not None:
        prediction = db.session.get(Prediction, prediction_id)
        if prediction is None:
            raise LabelError(f"No prediction with id {prediction_id}.")
        if prediction.image_id != image_id:
            raise LabelError("That prediction belongs to another image.")
    else:
        prediction = predictions.latest(image_id)
    if resolved is None:  # unsure without a class: the model's call stands as the lean
        if prediction is None:
            raise LabelError("Unsure with no prediction to lean on: choose the class you lean to.")
        resolved = catalog.canonical(prediction.predicted_class)
    label = resolved
    if time_spent_ms is not None and not 0 <= time_spent_ms <= 24 * 3600 * 1000:
        time_spent_ms = None  # a clock skew in the browser should not store nonsense
    mine = db.session.execute(db.select(Label).filter_by(image_id=image_id, user_id=user.id)).scalar_one_or_none()
    if mine is not None:  # double submit: the first answer stands
        return SavedLabel(mine, False)
    if not _take_for_label(image_id, user):
        return _label_taken(image_id, user)
    row = Label(
        image_id=image_id,
        user_id=user.id,
        label=label,
        prediction=prediction,
        # a model trained before a rename answers with the class's old name; an unsure answer neither
        # confirms nor corrects, so it stays out of every agreement figure (trust meter, drift, gate)
        agreed=(catalog.canonical(prediction.predicted_class) == label) if prediction and not unsure else None,
        time_spent_ms=time_spent_ms,
        channel=channel,
        unsure=unsure,
        **texts,
    )
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:  # the unique indexes: a double submit, or another doctor's label
        db.session.rollback()
        return _label_taken(image_id, user)
    audit.record(audit.Kind.LABEL, user, details=label_details(row))
    db.session.commit()
    return SavedLabel(row, True)


def label_details(label: Label) -> dict:
    """What the history keeps of a label: ids and the answer, never anything about the patient."""
    return {
        "image_id": label.image_id,
        "label_id": label.id,
        "label": label.label,
        "channel": label.channel,
        "prediction_id": label.prediction_id,
        "agreed": label.agreed,
        "unsure": label.unsure,
    }


def label_to_dict(label: Label) -> dict:
    return {
        "id": label.id,
        "image_id": label.image_id,
        "label": label.label,
        "user": label.user.username,
        "prediction_id": label.prediction_id,
        "agreed": label.agreed,
        "unsure": label.unsure,
        "findings": label.findings,
        "impression": label.impression,
        "comment": label.comment,
        "time_spent_ms": label.time_spent_ms,
        "created_at": label.created_at.isoformat() + "Z",
    }
