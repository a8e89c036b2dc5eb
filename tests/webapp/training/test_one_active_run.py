"""One queued or running training run covers every request, held by the database (SQLite and PostgreSQL)."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.conftest import race
from webapp.extensions import db
from webapp.models import TrainingRun, utcnow
from webapp.training import runs


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_app(request):
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


def active_runs() -> list[int]:
    return (
        db.session.execute(db.select(TrainingRun.id).where(TrainingRun.status.in_(("queued", "running"))))
        .scalars()
        .all()
    )


def test_ten_engineers_pressing_train_now_at_once_queue_one_run(any_app):
    outcomes = race(any_app, lambda _: runs.enqueue("manual").id, range(10))
    assert len(active_runs()) == 1
    assert outcomes == active_runs() * 10  # every request was answered with that one run


def test_the_database_refuses_a_second_queued_or_running_run(any_app):
    db.session.add(TrainingRun(trigger="manual", status="running"))
    db.session.commit()
    db.session.add(TrainingRun(trigger="labels", status="queued"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    db.session.add_all([TrainingRun(trigger="cli", status="failed"), TrainingRun(trigger="cli", status="succeeded")])
    db.session.commit()  # finished runs are history: any number of them


def test_a_request_after_the_run_finished_queues_a_new_one(any_app):
    first = runs.enqueue("manual")
    assert runs.enqueue("labels").id == first.id
    first.status = "failed"
    db.session.commit()
    second = runs.enqueue("labels")
    assert second.id != first.id and second.status == "queued" and second.trigger == "labels"


def test_the_migration_keeps_the_earliest_of_the_runs_queued_before_it(any_app):
    from flask_migrate import downgrade, upgrade

    db.session.commit()
    downgrade(revision="0013")
    with db.engine.begin() as connection:  # what racing requests left before the index existed
        for status in ("succeeded", "queued", "queued", "running", "queued"):
            # the table as it was at 0013: written in SQL, since the model has columns added later
            connection.execute(
                text("INSERT INTO training_run (trigger, status, created_at) VALUES ('manual', :status, :now)"),
                {"status": status, "now": utcnow()},
            )
    upgrade()
    rows = db.session.execute(db.select(TrainingRun.status, TrainingRun.error).order_by(TrainingRun.id)).all()
    assert [status for status, _ in rows] == ["succeeded", "queued", "failed", "failed", "failed"]
    assert all("earlier queued or running run covered this request" in error for _, error in rows[2:])
    assert runs.enqueue("labels").id == 2
