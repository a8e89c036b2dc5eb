"""Labelling activity: labels per day and doctor, median review time, queue size, claims held, Cohen's
kappa between doctors on double-read gold images (against sklearn) and disagreement with the final label."""

from __future__ import annotations

import base64
from datetime import timedelta

from sklearn.metrics import cohen_kappa_score

from tests.conftest import login, user
from tests.webapp.monitoring import trust_seed as seed
from webapp.extensions import db
from webapp.models import Claim, GoldItem, Label, utcnow
from webapp.monitoring import activity

# two doctors' blind reads of six gold images; images 4 and 5 were disputed and adjudicated
READS_1 = ["normal", "normal", "pneumonia", "pneumonia", "normal", "pneumonia"]
READS_2 = ["normal", "pneumonia", "pneumonia", "pneumonia", "pneumonia", "normal"]
FINAL = ["normal", None, "pneumonia", "pneumonia", "pneumonia", "normal"]  # image 2 still disputed


def _seed_gold_reads() -> None:
    admin = user("admin")
    for first, second, final in zip(READS_1, READS_2, FINAL):
        image = seed.image(is_gold=True)
        for name, label in (("doctor", first), ("doctor2", second)):
            db.session.add(Label(image_id=image.id, user_id=user(name).id, label=label, channel="gold"))
        disputed = first != second
        db.session.add(
            GoldItem(
                image_id=image.id,
                status="final" if final else "disputed",
                final_label=final,
                adjudicated_by_id=admin.id if disputed and final else None,
            )
        )
    db.session.commit()


def test_kappa_per_pair_matches_sklearn(app):
    _seed_gold_reads()
    found = activity.activity(30)
    assert len(found.kappas) == 1
    pair = found.kappas[0]
    assert (pair.first, pair.second, pair.images, pair.agreed) == ("doctor", "doctor2", 6, 3)
    assert pair.kappa == cohen_kappa_score(READS_1, READS_2)
    # disagreement with the final label, over the five final images
    by_doctor = {row.username: row for row in found.adjudication}
    assert (by_doctor["doctor"].final_reads, by_doctor["doctor"].disagreed) == (5, 2)  # images 5 and 6
    assert (by_doctor["doctor2"].final_reads, by_doctor["doctor2"].disagreed) == (5, 0)
    assert (by_doctor["doctor"].adjudicated_reads, by_doctor["doctor"].adjudicated_disagreed) == (2, 2)
    assert (by_doctor["doctor2"].adjudicated_reads, by_doctor["doctor2"].adjudicated_disagreed) == (2, 0)


def test_kappa_is_undefined_not_a_warning_when_one_class_throughout():
    reads = {1: {"a": "normal", "b": "normal"}, 2: {"a": "normal", "b": "normal"}}
    (pair,) = activity.kappas(reads)
    assert pair.kappa is None and pair.agreed == 2


def test_labels_per_day_and_doctor_median_queue_and_claims(app):
    seed.review("doctor", "normal", "normal", days_ago=0, time_spent_ms=4000)
    seed.review("doctor", "normal", "normal", days_ago=0, time_spent_ms=6000)
    seed.review("doctor", "normal", "pneumonia", days_ago=2, time_spent_ms=11000)
    seed.review("doctor2", "pneumonia", "pneumonia", days_ago=2, time_spent_ms=3000)
    seed.review("doctor2", "pneumonia", "pneumonia", days_ago=45, time_spent_ms=1)  # outside 30 days
    open_images = [seed.image() for _ in range(4)]  # pool, unlabeled: the queue
    seed.image(split="train")  # not the queue
    seed.image(is_gold=True)  # not the queue
    now = utcnow()
    db.session.add(Claim(image_id=open_images[0].id, user_id=user("doctor").id, expires_at=now + timedelta(minutes=2)))
    db.session.add(Claim(image_id=open_images[1].id, user_id=user("doctor").id, expires_at=now - timedelta(minutes=1)))
    db.session.commit()
    found = activity.activity(30)
    today, two_days_ago = now.date().isoformat(), (now - timedelta(days=2)).date().isoformat()
    assert found.per_day == {two_days_ago: {"doctor": 1, "doctor2": 1}, today: {"doctor": 2}}
    doctors = {d.username: d for d in found.doctors}
    assert (doctors["doctor"].labels, doctors["doctor"].median_review_ms) == (3, 6000)
    assert (doctors["doctor2"].labels, doctors["doctor2"].median_review_ms) == (1, 3000)
    assert found.median_review_ms == 5000  # 3000, 4000, 6000, 11000
    assert found.queue_size == 4
    assert found.claims_held == 1  # the expired claim is no longer held
    assert base64.b64decode(found.chart_svg).startswith(b"<?xml")


def test_the_page_is_for_engineers(app):
    _seed_gold_reads()
    seed.review("doctor", "normal", "normal", days_ago=0, time_spent_ms=4000)
    db.session.commit()
    doctor = app.test_client()
    login(doctor, "doctor")
    assert doctor.get("/activity").status_code == 403  # per-doctor figures are not for colleagues
    engineer = app.test_client()
    login(engineer, "engineer")
    page = engineer.get("/activity").get_data(as_text=True)
    assert "data:image/svg+xml;base64," in page
    assert f"{cohen_kappa_score(READS_1, READS_2):.2f}" in page
    assert "4.0 s" in page
    assert engineer.get("/activity?days=0").status_code == 400
