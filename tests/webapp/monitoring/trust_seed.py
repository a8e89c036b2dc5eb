"""Rows for the trust meter, activity and metrics tests, written straight to the database: an image,
the prediction a doctor saw and the doctor's label, with the agreement, site and day the test needs."""

from __future__ import annotations

import itertools
from datetime import timedelta

from tests.conftest import user
from webapp.extensions import db
from webapp.models import Image, Label, Prediction, utcnow

_ids = itertools.count(1)


def image(site: str | None = "north", split: str = "pool", is_gold: bool = False) -> Image:
    n = next(_ids)
    row = Image(
        sha256=f"{n:064x}",
        path=f"seed/{n}.png",
        width=32,
        height=32,
        source_format="png",
        origin="import",
        split=split,
        is_gold=is_gold,
        site=site,
    )
    db.session.add(row)
    db.session.flush()
    return row


def review(
    doctor: str,
    label: str,
    predicted: str,
    *,
    site: str | None = "north",
    confidence: float = 0.7,
    version: int = 1,
    days_ago: float = 1,
    time_spent_ms: int | None = None,
) -> Label:
    """One reviewed image: the model said `predicted`, the doctor answered `label`."""
    shown = image(site)
    prediction = Prediction(
        image_id=shown.id,
        model_version=version,
        probabilities={predicted: confidence},
        predicted_class=predicted,
        confidence=confidence,
    )
    db.session.add(prediction)
    db.session.flush()
    row = Label(
        image_id=shown.id,
        user_id=user(doctor).id,
        prediction_id=prediction.id,
        label=label,
        agreed=label == predicted,
        time_spent_ms=time_spent_ms,
        channel="web",
        created_at=utcnow() - timedelta(days=days_ago),
    )
    db.session.add(row)
    db.session.flush()
    return row


def reviews(count: int, agreeing: int, label: str, doctor: str = "doctor", **kwargs) -> None:
    """`count` reviews of class `label`, `agreeing` of them confirming the prediction."""
    other = "pneumonia" if label == "normal" else "normal"
    for i in range(count):
        review(doctor, label, label if i < agreeing else other, **kwargs)
