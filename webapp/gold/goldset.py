"""The gold set: marking images, two independent doctor reads, adjudication of disagreements."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError

from webapp import audit
from webapp.auth import access
from webapp.classes import catalog
from webapp.errors import Problem
from webapp.extensions import db, rows_changed
from webapp.models import Claim, GoldItem, Image, Label, Prediction, User, utcnow

READS_NEEDED = 2
READ_CHANNEL = "gold"  # Label.channel of a gold read: made blind, outside the review queue


class GoldError(Problem):
    """A gold-set action that cannot be done as asked."""


@dataclass
class Marked:
    added: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)  # image id -> why

    def summary(self) -> str:
        parts = [f"{len(self.added)} image(s) added to the gold set; each now needs two doctor reads."]
        if self.already:
            parts.append(f"Already gold: {', '.join(map(str, self.already))}.")
        for image_id, why in self.refused.items():
            parts.append(f"#{image_id} not added: {why}.")
        return " ".join(parts)


def mark(image_ids: list[int], engineer: User) -> Marked:
    """Put images in the gold set: out of the review queue and training from now on. Images a
    model trained on, or that doctors labeled beside a prediction, cannot give a blind read. A doctor's
    "unsure" answer does not count as labeled: the gold reads of other doctors are its second opinion."""
    result = Marked()
    images = {
        image.id: image for image in db.session.execute(db.select(Image).where(Image.id.in_(image_ids))).scalars()
    }
    labeled = set(
        db.session.execute(
            db.select(Label.image_id).where(Label.image_id.in_(image_ids), Label.unsure.is_(False))
        ).scalars()
    )
    for image_id in dict.fromkeys(image_ids):
        image = images.get(image_id)
        if image is None:
            result.refused[image_id] = "no such image"
        elif db.session.get(GoldItem, image_id) is not None:
            result.already.append(image_id)
        elif image.split == "train":
            result.refused[image_id] = "it came labeled for training"
        elif image_id in labeled:
            result.refused[image_id] = "doctors already labeled it in the review queue"
        else:
            image.is_gold = True
            db.session.add(GoldItem(image_id=image_id, marked_by_id=engineer.id, status="pending"))
            db.session.execute(db.delete(Claim).where(Claim.image_id == image_id))
            result.added.append(image_id)
    db.session.commit()
    return result


def reads(image_id: int) -> list[Label]:
    return list(
        db.session.execute(
            db.select(Label).filter_by(image_id=image_id, channel=READ_CHANNEL).order_by(Label.id)
        ).scalars()
    )


def is_blind(image: Image) -> bool:
    """A gold image whose label is not final yet: outside the gold-read flow it does not exist."""
    return bool(image.is_gold) and (image.gold is None or image.gold.status != "final")


def visible_image(image_id: int) -> Image:
    """The image as the ordinary routes may show it: a 404 for a missing image and for a gold image
    awaiting its reads alike, so nobody learns which images are gold (nor their reads, nor the
    model's prediction) before adjudication."""
    image = db.session.get(Image, image_id)
    if image is None or is_blind(image):
        raise GoldError(f"No image with id {image_id}.", 404)
    return image


def visible_prediction(prediction_id: int) -> Prediction:
    """A prediction as the ordinary routes (heat map, chat) may show it: hidden like its image."""
    prediction = db.session.get(Prediction, prediction_id)
    if prediction is None or is_blind(prediction.image):
        raise GoldError(f"No prediction with id {prediction_id}.", 404)
    return prediction


def _require_doctor(user: User) -> None:
    if not access.may_label(user):
        raise GoldError(f"Gold reads come from the role {' or '.join(access.label_roles())}.", 403)


def next_read(doctor: User) -> GoldItem | None:
    """A pending gold image this doctor has not read; reads are independent, so nothing of the
    other read or the model's prediction is shown with it."""
    _require_doctor(doctor)
    mine = db.select(Label.image_id).where(Label.user_id == doctor.id)
    return db.session.execute(
        db.select(GoldItem)
        .where(GoldItem.status == "pending", GoldItem.image_id.not_in(mine))
        .order_by(GoldItem.created_at, GoldItem.image_id)
        .limit(1)
    ).scalar_one_or_none()


def record_read(
    doctor: User, image_id: int, label: str, class_names: list[str], time_spent_ms: int | None = None
) -> GoldItem:
    _require_doctor(doctor)
    resolved = catalog.resolve(label, class_names)
    if resolved is None:
        raise GoldError(f"Unknown class {label!r}; known classes: {', '.join(class_names)}.")
    label = resolved
    item = db.session.get(GoldItem, image_id)
    if item is None:
        raise GoldError(f"Image {image_id} is not in the gold set.", 404)
    if item.status != "pending":
        raise GoldError(f"Image {image_id} already has its reads.", 409)
    # no prediction is attached: the doctor did not see one, and gold reads never count as agreement
    read = Label(
        image_id=image_id,
        user_id=doctor.id,
        label=label,
        prediction=None,
        agreed=None,
        time_spent_ms=time_spent_ms,
        channel=READ_CHANNEL,
    )
    db.session.add(read)
    try:
        db.session.flush()
    except IntegrityError:  # the unique (image, doctor) constraint: one read per doctor
        db.session.rollback()
        raise GoldError("You already read this gold image; a second read must come from another doctor.", 409) from None
    details = {"image_id": image_id, "label_id": read.id, "label": label, "channel": READ_CHANNEL}
    audit.record(audit.Kind.LABEL, doctor, details=details)
    settle(item, doctor)
    return item


def settle(item: GoldItem, reader: User | None = None) -> None:
    """Two reads that agree make the label final; two that disagree go to an adjudicator."""
    by_doctor = {label.user_id: label.label for label in reads(item.image_id)}
    if len(by_doctor) >= READS_NEEDED and item.status == "pending":
        renamed = catalog.aliases()  # a read given before a rename agrees with one given after it
        answers = {catalog.canonical(answer, renamed) for answer in by_doctor.values()}
        if len(answers) == 1:
            item.status, item.final_label, item.finalized_at = "final", answers.pop(), utcnow()
            details = {"image_id": item.image_id, "label": item.final_label, "gold": "agreeing reads"}
            audit.record(audit.Kind.LABEL, reader, details=details, automatic=True)
        else:
            item.status = "disputed"
    db.session.commit()


def disputed_for(user: User) -> list[GoldItem]:
    """Disputed gold images this user may settle: an adjudicator who is not one of the readers."""
    if not user.adjudicates:
        return []
    mine = db.select(Label.image_id).where(Label.user_id == user.id, Label.channel == READ_CHANNEL)
    return list(
        db.session.execute(
            db.select(GoldItem)
            .where(GoldItem.status == "disputed", GoldItem.image_id.not_in(mine))
            .order_by(GoldItem.image_id)
            .limit(200)
        ).scalars()
    )


def adjudicate(user: User, image_id: int, label: str, class_names: list[str]) -> GoldItem:
    if not user.adjudicates:
        raise GoldError("Only an adjudicator (or an admin) settles disputed gold reads.", 403)
    item = db.session.get(GoldItem, image_id)
    if item is None or item.status != "disputed":
        raise GoldError(f"Image {image_id} has no disputed reads to settle.", 409)
    if user.id in {read.user_id for read in reads(image_id)}:
        raise GoldError("You read this image yourself: another adjudicator settles it.", 403)
    resolved = catalog.resolve(label, class_names)
    if resolved is None:
        raise GoldError(f"Unknown class {label!r}; known classes: {', '.join(class_names)}.")
    label = resolved
    # conditional: two adjudicators at once, the first decision stands
    settled = rows_changed(
        db.update(GoldItem)
        .where(GoldItem.image_id == image_id, GoldItem.status == "disputed")
        .values(status="final", final_label=label, adjudicated_by_id=user.id, finalized_at=utcnow())
    )
    if settled == 1:
        audit.record(audit.Kind.LABEL, user, details={"image_id": image_id, "label": label, "gold": "adjudicated"})
    db.session.commit()
    if settled != 1:
        raise GoldError(f"Image {image_id} was settled by someone else meanwhile.", 409)
    db.session.refresh(item)
    return item


def adjudicated_by_class() -> dict[str, int]:
    """Final gold labels per class (renamed classes mapped)."""
    from webapp.classes import catalog

    renamed = catalog.aliases()
    found: dict[str, int] = {}
    rows = db.session.execute(
        db.select(GoldItem.final_label, db.func.count())
        .where(GoldItem.status == "final")
        .group_by(GoldItem.final_label)
    ).all()
    for label, count in rows:
        name = catalog.canonical(label, renamed)
        found[name] = found.get(name, 0) + count
    return found


def learning_classes(class_names: list[str], min_class_gold: int) -> dict[str, int]:
    """Classes with fewer adjudicated gold images than the gate needs to hold them to a floor."""
    counts_now = adjudicated_by_class()
    return {name: counts_now.get(name, 0) for name in class_names if counts_now.get(name, 0) < min_class_gold}


def counts() -> dict[str, int]:
    rows = db.session.execute(db.select(GoldItem.status, db.func.count()).group_by(GoldItem.status)).all()
    return {status: count for status, count in rows}
