"""kill -9 of real worker processes mid fine-tune, mid pool scoring and between the steps of a
promotion or rollback; then the restart's recovery: runs failed, scores whole or absent, aliases and
history in agreement. The processes stop at test-hook pause points (webapp.processes.pause_point)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import aliases_applied, registry_of, seed_pool, user
from webapp.extensions import db
from webapp.models import AuditEvent, GateReport, Prediction, QueryScore, TrainingRun, utcnow
from webapp.processes import PAUSE_ENV, PAUSE_FILE_ENV, started_at

ROOT = Path(__file__).resolve().parents[2]
MEDAL = [sys.executable, "-c", "import sys; from webapp.cli import main; sys.exit(main())"]
PROMOTE = """
from webapp import create_app
from webapp.approvals import decisions
from webapp.extensions import db
from webapp.models import User

app = create_app()
with app.app_context():
    engineer = db.session.execute(db.select(User).filter_by(username="engineer")).scalar_one()
    decisions.decide(2, engineer, approve=True, reason="better on the gold set", override=True)
"""


def kill_at(point: str, args: list[str], tmp_path: Path, timeout: float = 180) -> int:
    """Start `args` as its own process, wait until it sleeps at pause point `point`, kill -9 it.
    Returns its pid (dead now)."""
    db.session.commit()  # hold no SQLite lock the child would wait for
    marker = tmp_path / f"paused-{point.replace(':', '-')}"
    env = dict(os.environ, **{PAUSE_ENV: point, PAUSE_FILE_ENV: str(marker)})
    child = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if child.poll() is not None:
            raise AssertionError(f"{args} ended before {point}:\n{child.stdout.read().decode()[-3000:]}")
        if time.monotonic() > deadline:
            child.kill()
            raise AssertionError(f"{args} never reached {point}")
        time.sleep(0.1)
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    db.session.expire_all()
    return child.pid


def scores_of(version: int) -> int:
    return db.session.execute(db.select(db.func.count(QueryScore.id)).filter_by(model_version=version)).scalar_one()


def predictions_of(version: int) -> int:
    return db.session.execute(db.select(db.func.count(Prediction.id)).filter_by(model_version=version)).scalar_one()


def history(kind: str) -> list[AuditEvent]:
    return db.session.execute(db.select(AuditEvent).filter_by(kind=kind).order_by(AuditEvent.id)).scalars().all()


@pytest.mark.slow
def test_worker_killed_mid_fine_tune_leaves_the_run_failed_and_the_next_run_goes_on(trained_app, tmp_path):
    from webapp.training import jobs, runs

    queued = runs.enqueue("manual")
    pid = kill_at("training:fitting", [*MEDAL, "worker"], tmp_path)
    run = db.session.get(TrainingRun, queued.id)
    assert run.status == "running" and run.worker_pid == pid and run.lease_token
    assert run.lease_expires_at > utcnow()  # its lease still runs: the dead process is what is noticed
    assert jobs.recover_interrupted() == 1  # what the restarted worker does first
    db.session.refresh(run)
    assert run.status == "failed" and "its worker process is gone" in run.error and run.model_version is None
    assert [e.details["training_run"] for e in history("recovery")] == [run.id]
    jobs.bind(trained_app)
    assert runs.enqueue("manual").id != run.id  # the dead run no longer blocks the queue
    done = jobs.tick()
    assert done["trained"]["status"] == "succeeded"
    assert registry_of(trained_app).aliases() == {"champion": 1, "candidate": done["trained"]["version"]}


@pytest.mark.slow
def test_worker_killed_after_registering_does_not_leave_an_ungated_candidate(trained_app, tmp_path):
    from webapp.training import jobs, runs

    queued = runs.enqueue("manual")
    kill_at("training:registered", [*MEDAL, "train"], tmp_path)
    registry = registry_of(trained_app)
    assert registry.aliases() == {"champion": 1}  # registered, nothing else yet
    assert jobs.recover_interrupted() == 1
    run = db.session.get(TrainingRun, queued.id)
    assert run.status == "failed" and run.model_version == 2 and "version 2 was registered" in run.error
    assert registry.aliases() == {"champion": 1}
    assert next(v for v in registry.versions() if v.version == 2).tags["training_run_failed"] == "True"


@pytest.mark.slow
def test_scoring_killed_mid_write_leaves_each_version_scored_whole_or_not_at_all(tiny, tmp_path):
    from learning.strategies import available
    from webapp.inference import scoring

    pool = seed_pool(6)
    scoring.score(1)
    whole = len(pool) * len(available())
    assert scores_of(1) == whole and predictions_of(1) == len(pool)
    kill_at("scoring:rows-written", [*MEDAL, "score", "--version", "1"], tmp_path)  # re-scoring
    assert scores_of(1) == whole and predictions_of(1) == len(pool)
    kill_at("scoring:rows-written", [*MEDAL, "score", "--version", "2"], tmp_path)  # a new version
    assert scores_of(2) == 0 and predictions_of(2) == 0
    scoring.score(2)
    assert scores_of(2) == whole


PROMOTION_STEPS = ["intent", "previous", "champion", "candidate", "tags"]


@pytest.mark.slow  # each case starts a Python process that imports torch and MLflow
@pytest.mark.parametrize("step", PROMOTION_STEPS)
def test_promotion_killed_between_steps_is_finished_on_restart_and_history_agrees(gated, tmp_path, step):
    from registry import aliases
    from webapp.approvals import recovery

    planned = aliases.plan_promotion(gated.aliases(), 2)
    kill_at(f"promotion:{step}", [sys.executable, "-c", PROMOTE], tmp_path)
    assert gated.aliases()["champion"] in (1, 2)  # exactly one champion at every point
    assert recovery.unfinished()
    assert len(recovery.reconcile()) == 1  # the dead holder's lock is broken: pid and start time are gone
    assert aliases_applied(gated, planned) and gated.aliases() == {"champion": 2, "previous": 1}
    phases = [(e.details["phase"], e.details.get("recovered")) for e in history("promotion")]
    assert phases == [("started", None), ("completed", True)]
    assert [e.actor_name for e in history("approval")] == ["engineer"]
    assert db.session.execute(db.select(GateReport.decision).filter_by(model_version=2)).scalar_one() == "approved"
    assert not recovery.unfinished() and recovery.reconcile() == []


@pytest.mark.slow
def test_rollback_killed_after_the_champion_switch_is_finished(gated, tmp_path):
    from webapp.approvals import decisions, recovery

    decisions.decide(2, user("engineer"), approve=True, reason="better", override=True)
    kill_at("rollback:champion", [*MEDAL, "rollback", "--reason", "worse in clinic", "--user", "engineer"], tmp_path)
    assert gated.aliases()["champion"] == 1
    assert len(recovery.reconcile()) == 1
    assert gated.aliases() == {"champion": 1}
    assert [e.details["phase"] for e in history("rollback")] == ["started", "completed"]


def _running(pid: int, started: float | None, **fields) -> TrainingRun:
    run = TrainingRun(trigger="manual", status="running", worker_pid=pid, worker_started_at=started, **fields)
    db.session.add(run)
    db.session.commit()
    return run


def test_a_run_whose_pid_now_names_another_process_is_recovered(app):
    from webapp.training import jobs

    other = subprocess.Popen(["sleep", "60"])
    try:
        reused = _running(other.pid, started_at(other.pid) - 30)  # its worker died; the pid went to `sleep`
        assert jobs.recover_interrupted() == 1
        db.session.refresh(reused)
        assert reused.status == "failed" and "its worker process is gone" in reused.error
        owned = _running(other.pid, started_at(other.pid))  # really `sleep`'s: alive (one run at a time)
        assert jobs.recover_interrupted() == 0
        db.session.refresh(owned)
        assert owned.status == "running"
    finally:
        other.kill()
        other.wait()
    assert jobs.recover_interrupted() == 1  # now it is gone too


def test_another_hosts_run_is_left_alone_until_its_lease_expires(app):
    from datetime import timedelta

    from webapp.training import jobs

    run = _running(1, 12.0, worker_host="gpu-node-7", lease_expires_at=utcnow() + timedelta(minutes=2))
    assert jobs.recover_interrupted() == 0
    run.lease_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert jobs.recover_interrupted() == 1
    db.session.refresh(run)
    assert run.status == "failed" and "lease expired" in run.error
