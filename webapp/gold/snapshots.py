"""Frozen gold snapshots: the gold set as it is at a gate run, named by a hash of its items."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy.exc import IntegrityError

from webapp import labelstore
from webapp.extensions import db
from webapp.models import GoldSnapshot
from webapp.services import services


def freeze_gold() -> tuple[GoldSnapshot, list[labelstore.Example]]:
    """The gold set as it is now, frozen: the same hash always names the same items."""
    examples = labelstore.gold_examples(services().store)
    items = sorted([example.image_id, example.label] for example in examples)
    digest = hashlib.sha256(json.dumps(items).encode()).hexdigest()
    find = db.select(GoldSnapshot).filter_by(content_hash=digest)
    snapshot = db.session.execute(find).scalar_one_or_none()
    if snapshot is None:
        db.session.add(GoldSnapshot(content_hash=digest, items=items, size=len(items)))
        try:
            db.session.commit()
        except IntegrityError:  # another gate run froze the same set a moment ago
            db.session.rollback()
        snapshot = db.session.execute(find).scalar_one()
    return snapshot, examples
