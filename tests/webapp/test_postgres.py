"""The same core flows on PostgreSQL: migrations, ingest, queue claims, labels, audit history."""

import pytest

from tests.conftest import seed_labeled, seed_pool
from webapp.extensions import db
from webapp.inference import scoring
from webapp.models import AuditEvent, Label, User
from webapp.review import queue
from webapp.training import runs

pytestmark = pytest.mark.postgres


def _user(name):
    return db.session.execute(db.select(User).filter_by(username=name)).scalar_one()


def test_review_loop_on_postgres(pg_app):
    assert db.engine.dialect.name == "postgresql"
    seed_labeled(30)
    seed_pool(6)
    run = runs.run(runs.enqueue("test"))
    assert run.status == "succeeded", run.error
    assert scoring.score()["images"] == 6
    first = queue.next_for(_user("doctor"))
    second = queue.next_for(_user("doctor2"))
    assert first.id != second.id
    assert queue.submit(_user("doctor"), first.id, "normal").created
    assert not queue.submit(_user("doctor"), first.id, "pneumonia").created
    assert db.session.execute(db.select(db.func.count(Label.id))).scalar_one() == 1


def test_audit_history_is_append_only_on_postgres(pg_app):
    event = AuditEvent(kind="promotion", actor_name="system", model_version=1, reason="test")
    db.session.add(event)
    db.session.commit()
    event.reason = "rewritten"
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.commit()
    db.session.rollback()
