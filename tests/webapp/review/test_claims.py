"""One image, one doctor's label: claims kept once labeled, the database's unique review label,
an unshowable image never blocking the queue, labels only from label_roles, and the audit trail."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy.exc import IntegrityError

from tests.conftest import api_token, change_settings, login, race, seed_pool, user
from webapp.extensions import db
from webapp.models import AuditEvent, Claim, Image, Label, User
from webapp.review import queue
from webapp.services import services

DOCTORS = [f"reader{i}" for i in range(8)]


def _add_doctors(names=DOCTORS) -> None:
    for name in names:
        row = User(username=name, role="doctor")
        row.set_password("reader-pass")
        db.session.add(row)
    db.session.commit()


def _label_counts() -> dict[int, int]:
    rows = db.session.execute(db.select(Label.image_id, db.func.count()).group_by(Label.image_id)).all()
    return dict(rows)


def test_the_database_refuses_a_second_doctors_review_label(tiny):
    image_id = seed_pool(1)[0]
    db.session.add(Label(image_id=image_id, user_id=user("doctor").id, label="normal", channel="web"))
    db.session.commit()
    db.session.add(Label(image_id=image_id, user_id=user("doctor2").id, label="pneumonia", channel="api"))
    with pytest.raises(IntegrityError):  # not Python's check: the partial unique index
        db.session.commit()
    db.session.rollback()


def test_a_label_on_an_image_another_doctor_labeled_is_409(app, tiny, client):
    image_id = seed_pool(1)[0]
    first = client.post(f"/api/v1/images/{image_id}/labels", headers=api_token(app, "doctor"), json={"label": "normal"})
    assert first.status_code == 201
    second = client.post(
        f"/api/v1/images/{image_id}/labels", headers=api_token(app, "doctor2"), json={"label": "pneumonia"}
    )
    assert second.status_code == 409 and "another doctor" in second.get_json()["error"]
    assert _label_counts() == {image_id: 1}


def test_an_image_held_by_another_doctor_cannot_be_labeled_past_the_claim(tiny):
    seed_pool(2)
    held = queue.next_for(user("doctor"))
    with pytest.raises(queue.LabelError) as caught:
        queue.submit(user("doctor2"), held.id, "normal")
    assert caught.value.status == 409
    assert queue.submit(user("doctor"), held.id, "normal").created
    assert db.session.get(Claim, held.id).state == "labeled"


def test_an_expired_claim_is_taken_over_and_a_labeled_image_never_served_again(tiny):
    ids = seed_pool(3)
    held = queue.next_for(user("doctor"))
    db.session.get(Claim, held.id).expires_at = datetime(2000, 1, 1)  # the doctor walked away
    db.session.commit()
    taken = queue.next_for(user("doctor2"))
    assert taken.id == held.id  # the expired claim went to the next doctor
    assert queue.submit(user("doctor2"), taken.id, "normal").created
    served = set()
    while (image := queue.next_for(user("doctor"))) is not None:
        served.add(image.id)
        queue.submit(user("doctor"), image.id, "normal")
    assert served == set(ids) - {held.id}
    assert set(_label_counts().values()) == {1}


@pytest.fixture
def concurrent_pool(tiny):
    _add_doctors()
    return seed_pool(30, seed=21)


def _review_until_empty(app):
    """One doctor's session: take the next image and label it until the queue says nothing."""

    def work(name: str) -> dict:
        outcome = {"created": 0, "conflict": 0, "served": []}
        doctor = db.session.execute(db.select(User).filter_by(username=name)).scalar_one()
        while (image := queue.next_for(doctor)) is not None:
            outcome["served"].append(image.id)
            try:
                saved = queue.submit(doctor, image.id, "normal")
                outcome["created" if saved.created else "conflict"] += 1
            except queue.LabelError as error:
                assert error.status == 409
                outcome["conflict"] += 1
        return outcome

    return work


def _assert_each_image_labeled_once(outcomes, pool):
    errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert not errors, errors
    counts = _label_counts()
    assert set(counts) == set(pool)  # nothing left open, though every doctor stopped at "nothing to review"
    assert set(counts.values()) == {1}
    assert sum(outcome["created"] for outcome in outcomes) == len(pool)
    served = [image_id for outcome in outcomes for image_id in outcome["served"]]
    assert len(served) == len(set(served)) == len(pool)  # never served an image twice
    assert sum(outcome["conflict"] for outcome in outcomes) == 0


def test_concurrent_doctors_label_every_image_exactly_once_on_sqlite(app, concurrent_pool):
    outcomes = race(app, _review_until_empty(app), DOCTORS)
    _assert_each_image_labeled_once(outcomes, concurrent_pool)


def test_concurrent_doctors_label_every_image_exactly_once_on_postgres(pg_app):
    from tests.conftest import _register_tiny, registry_of

    registry = registry_of(pg_app)
    registry.set_alias("champion", _register_tiny(registry, 1))
    _add_doctors()
    pool = seed_pool(30, seed=21)
    outcomes = race(pg_app, _review_until_empty(pg_app), DOCTORS)
    _assert_each_image_labeled_once(outcomes, pool)


def _break_file(image_id: int) -> None:
    image = db.session.get(Image, image_id)
    services().store.path(image.path).write_bytes(b"not an image any more")


def test_an_image_that_cannot_be_shown_leaves_the_queue_instead_of_blocking_it(app, tiny, client):
    ids = seed_pool(3)
    _break_file(ids[0])  # unscored and unpredicted: by id it comes first
    served = queue.serve(user("doctor"))
    assert served is not None and served.image.id != ids[0] and served.prediction.image_id == served.image.id
    assert db.session.get(Claim, ids[0]).state == "unshowable"
    _break_file(ids[1])
    _break_file(ids[2])
    queue.submit(user("doctor"), served.image.id, "normal")
    response = client.get("/api/v1/review/next", headers=api_token(app, "doctor2"))
    assert response.status_code == 200 and response.get_json()["image"] is None


def test_the_review_page_skips_an_image_it_cannot_show(app, tiny, client):
    ids = seed_pool(2)
    _break_file(ids[0])
    login(client, "doctor")
    page = client.get("/review")
    assert page.status_code == 200 and f"Review image {ids[1]}" in page.get_data(as_text=True)
    assert client.get("/review").status_code == 200  # a reload too


@pytest.mark.parametrize("name", ["engineer", "admin"])
def test_only_label_roles_create_labels(app, tiny, client, name):
    image_id = seed_pool(1)[0]
    headers = api_token(app, name)
    assert (
        client.post(f"/api/v1/images/{image_id}/labels", headers=headers, json={"label": "normal"}).status_code == 403
    )
    assert client.get("/api/v1/review/next", headers=headers).status_code == 403
    with pytest.raises(queue.LabelError) as caught:
        queue.submit(user(name), image_id, "normal")
    assert caught.value.status == 403
    login(client, name)
    assert client.get("/review").status_code == 403
    assert db.session.execute(db.select(db.func.count(Label.id))).scalar_one() == 0
    assert db.session.execute(db.select(db.func.count()).select_from(Claim)).scalar_one() == 0


def test_label_roles_are_read_from_settings(app, tiny):
    image_id = seed_pool(1)[0]
    change_settings(app, {"security": {"label_roles": ["doctor", "admin"]}})
    assert queue.submit(user("admin"), image_id, "normal").created


def test_a_label_naming_an_unknown_prediction_is_400(app, tiny, client):
    image_id = seed_pool(1)[0]
    response = client.post(
        f"/api/v1/images/{image_id}/labels",
        headers=api_token(app, "doctor"),
        json={"label": "normal", "prediction_id": 987654},
    )
    assert response.status_code == 400 and "987654" in response.get_json()["error"]
    assert db.session.execute(db.select(db.func.count(Label.id))).scalar_one() == 0


def test_every_label_is_in_the_history_with_no_patient_details(app, tiny, client):
    image_id = seed_pool(1)[0]
    served = queue.serve(user("doctor"))
    saved = queue.submit(user("doctor"), image_id, "pneumonia", prediction_id=served.prediction.id)
    event = db.session.execute(db.select(AuditEvent).filter_by(kind="label")).scalar_one()
    assert event.actor_name == "doctor"
    assert event.details == {
        "image_id": image_id,
        "label_id": saved.label.id,
        "label": "pneumonia",
        "channel": "web",
        "prediction_id": served.prediction.id,
        "agreed": saved.label.agreed,
        "unsure": False,
    }


def test_the_migration_keeps_earlier_double_labels_but_only_the_first_stands(home):
    from flask_migrate import upgrade
    from sqlalchemy import text

    from webapp import create_app

    app = create_app({"TESTING": True})
    with app.app_context():
        upgrade(revision="0003")
        rows = [
            "INSERT INTO user (id, username, password_hash, role, can_adjudicate, active, created_at) VALUES "
            "(1, 'a', 'x', 'doctor', 0, 1, '2024-01-01'), (2, 'b', 'x', 'doctor', 0, 1, '2024-01-01')",
            "INSERT INTO image (id, sha256, path, width, height, source_format, origin, split, is_gold, created_at) "
            "VALUES (1, 's1', 'p1', 8, 8, 'png', 'api', 'pool', 0, '2024-01-01'),"
            " (2, 's2', 'p2', 8, 8, 'png', 'api', 'pool', 0, '2024-01-01')",
            "INSERT INTO label (id, image_id, user_id, label, channel, created_at) VALUES "
            "(1, 1, 1, 'normal', 'web', '2024-01-01'), (2, 1, 2, 'pneumonia', 'api', '2024-01-02')",
            "INSERT INTO claim (image_id, user_id, expires_at) VALUES (2, 2, '2024-01-01')",
        ]
        for statement in rows:
            db.session.execute(text(statement))
        db.session.commit()
        upgrade()
        channels = dict(db.session.execute(text("SELECT id, channel FROM label")).all())
        claims = db.session.execute(text("SELECT image_id, user_id, state FROM claim ORDER BY image_id")).all()
        assert channels == {1: "web", 2: "double"}  # both answers kept; the second no longer counts
        assert [tuple(row) for row in claims] == [(1, 1, "labeled"), (2, 2, "held")]
        db.session.remove()
        db.engine.dispose()
