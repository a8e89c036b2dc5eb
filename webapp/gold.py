"""The gold set: marking images, two independent doctor reads, adjudication of disagreements."""
from __future__ import annotations

from webapp import reviewqueue
from webapp.extensions import db
from webapp.models import GoldItem, Image, Label, User, utcnow

READS_NEEDED = 2


class GoldError(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def mark(image_ids: list[int], engineer: User) -> int:
    """Put images in the gold set: out of the review queue and training from now on."""
    marked = 0
    for image in db.session.execute(db.select(Image).where(Image.id.in_(image_ids))).scalars():
        image.is_gold = True
        if db.session.get(GoldItem, image.id) is None:
            db.session.add(GoldItem(image_id=image.id, marked_by_id=engineer.id, status="pending"))
            marked += 1
    db.session.commit()
    missing = set(image_ids) - {i for (i,) in db.session.execute(db.select(Image.id).where(Image.id.in_(image_ids)))}
    if missing:
        raise GoldError(f"No images with ids {sorted(missing)}; the others were marked.", 404)
    return marked


def reads(image_id: int) -> list[Label]:
    return db.session.execute(db.select(Label).filter_by(image_id=image_id).order_by(Label.id)).scalars().all()


def next_read(doctor: User) -> GoldItem | None:
    """A pending gold image this doctor has not read; reads are independent, so nothing of the
    other read or the model's prediction is shown with it."""
    mine = db.select(Label.image_id).where(Label.user_id == doctor.id)
    return db.session.execute(db.select(GoldItem).where(GoldItem.status == "pending",
                                                        GoldItem.image_id.not_in(mine))
                              .order_by(GoldItem.created_at, GoldItem.image_id).limit(1)).scalar_one_or_none()


def record_read(doctor: User, image_id: int, label: str) -> GoldItem:
    item = db.session.get(GoldItem, image_id)
    if item is None:
        raise GoldError(f"Image {image_id} is not in the gold set.", 404)
    if item.status != "pending":
        raise GoldError(f"Image {image_id} already has its reads.", 409)
    saved = reviewqueue.submit(doctor, image_id, label, channel="web")
    if not saved.created:
        raise GoldError("You already read this gold image; a second read must come from another doctor.", 409)
    settle(item)
    return item


def settle(item: GoldItem) -> None:
    """Two reads that agree make the label final; two that disagree go to an adjudicator."""
    by_doctor = {label.user_id: label.label for label in reads(item.image_id)}
    if len(by_doctor) >= READS_NEEDED and item.status == "pending":
        answers = set(by_doctor.values())
        if len(answers) == 1:
            item.status, item.final_label, item.finalized_at = "final", answers.pop(), utcnow()
        else:
            item.status = "disputed"
    db.session.commit()


def adjudicate(user: User, image_id: int, label: str, class_names: list[str]) -> GoldItem:
    if not user.adjudicates:
        raise GoldError("Only an adjudicator (or an admin) settles disputed gold reads.", 403)
    item = db.session.get(GoldItem, image_id)
    if item is None or item.status != "disputed":
        raise GoldError(f"Image {image_id} has no disputed reads to settle.", 409)
    if label not in class_names:
        raise GoldError(f"Unknown class {label!r}.")
    item.status, item.final_label = "final", label
    item.adjudicated_by_id, item.finalized_at = user.id, utcnow()
    db.session.commit()
    return item


def counts() -> dict[str, int]:
    rows = db.session.execute(db.select(GoldItem.status, db.func.count()).group_by(GoldItem.status)).all()
    return {status: count for status, count in rows}
