"""A training run has one executor, ever: the worker and `medal train` never both run it."""

import subprocess
import threading
import time
import uuid
from datetime import timedelta

import pytest

from tests.conftest import race
from webapp.extensions import db
from webapp.models import TrainingRun, utcnow
from webapp.processes import hostname, started_at
from webapp.training import commands, runs


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_app(request):
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


def test_two_processes_starting_one_queued_run_at_once_execute_it_once(any_app):
    queued = runs.enqueue("manual").id

    def execute(_):
        return runs.run(db.session.get(TrainingRun, queued))

    outcomes = race(any_app, execute, range(2))
    executed = [outcome for outcome in outcomes if isinstance(outcome, TrainingRun)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert len(executed) == 1 and len(refused) == 1, outcomes
    assert f"Training run {queued} was already taken by another process" in str(refused[0])
    db.session.expire_all()
    run = db.session.get(TrainingRun, queued)
    assert run.status == "failed" and "at least 10" in run.error  # no data: the one executor failed it, once
    assert db.session.execute(db.select(db.func.count(TrainingRun.id))).scalar_one() == 1


@pytest.fixture
def busy_elsewhere(app):
    """A run another live process on this host executes (its lease current), finishing in 1.5 s."""
    other = subprocess.Popen(["sleep", "60"])
    began = utcnow() - timedelta(minutes=3)
    run = TrainingRun(
        trigger="labels",
        status="running",
        started_at=began,
        lease_token=uuid.uuid4().hex,
        lease_expires_at=utcnow() + timedelta(minutes=2),
        worker_host=hostname(),
        worker_pid=other.pid,
        worker_started_at=started_at(other.pid),
        progress={"stage": "training", "epoch": 1},
    )
    db.session.add(run)
    db.session.commit()

    def finish():
        with app.app_context():
            done = db.session.get(TrainingRun, run.id)
            done.status, done.finished_at, done.lease_expires_at = "succeeded", utcnow(), None
            done.model_version, done.metrics = 7, {"best_val_auc": 0.9125}
            db.session.commit()

    finisher = threading.Timer(1.5, finish)
    finisher.start()
    yield run.id, began
    finisher.join()
    other.kill()
    other.wait()


def test_medal_train_waits_for_the_run_the_worker_is_executing(app, runner, busy_elsewhere):
    run_id, began = busy_elsewhere
    start = time.monotonic()
    result = runner.invoke(commands.train)
    assert result.exit_code == 0, result.output
    assert f"Training run {run_id} is already running" in result.output and "waiting" in result.output
    reported = (
        f"Training run {run_id} (round, 0 s) registered model version 7 (validation AUC of the kept weights 0.9125)."
    )
    assert reported in result.output
    assert time.monotonic() - start >= 1.4  # it waited for the other executor to finish
    db.session.expire_all()
    run = db.session.get(TrainingRun, run_id)
    assert run.started_at == began and run.status == "succeeded"  # nobody took it over
    assert db.session.execute(db.select(db.func.count(TrainingRun.id))).scalar_one() == 1
