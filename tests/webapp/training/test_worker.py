"""The worker: triggers, queued runs, scoring after a change, crash recovery, one per home."""

import sqlite3
import subprocess
import threading
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import change_settings, login, seed_pool
from webapp.config import SchedulerSettings
from webapp.extensions import db
from webapp.models import Label, QueryScore, TrainingRun, User, utcnow
from webapp.review import queue
from webapp.training import jobs, runs, worker


def _user(name):
    return db.session.execute(db.select(User).filter_by(username=name)).scalar_one()


CFG = SchedulerSettings(
    min_new_labels=20, train_interval_minutes=60, check_seconds=30, plateau_runs=3, plateau_min_delta=0.002
)


@pytest.mark.parametrize(
    "state, reason",
    [  # new labels, minutes since the last run, minutes the oldest new label has waited, plateaued
        (jobs.TriggerState(0, None, None, False), None),
        (jobs.TriggerState(25, 5.0, 4.0, False), "labels"),
        (jobs.TriggerState(3, 90.0, 70.0, False), "interval"),
        (jobs.TriggerState(3, 10.0, 8.0, False), None),
        (jobs.TriggerState(3, 900.0, 10.0, False), None),  # the interval counts from the first new label
        (jobs.TriggerState(1, None, 900.0, False), None),  # no run yet: only the label count starts one
        (jobs.TriggerState(20, None, 1.0, False), "labels"),
        (jobs.TriggerState(50, 90.0, 70.0, True), None),
    ],
)
def test_trigger_reason(state, reason):
    assert jobs.trigger_reason(state, CFG) == reason


def _label(doctor: str = "doctor", seed: int = 5) -> None:
    """A doctor's label on a new pool image."""
    [image_id] = seed_pool(1, seed=seed)
    db.session.add(Label(image_id=image_id, user_id=_user(doctor).id, label="pneumonia"))
    db.session.commit()


def test_the_first_label_starts_no_fine_tune(app, client):
    jobs.bind(app)
    _label()
    assert jobs.tick() == {}
    assert db.session.execute(db.select(TrainingRun)).first() is None
    a_day_later = jobs.current_trigger_state(utcnow() + timedelta(days=1))
    assert jobs.trigger_reason(a_day_later, app.extensions["medal"].settings.scheduler) is None
    login(client, "engineer")
    card = client.get("/training").get_data(as_text=True)
    assert "New doctor labels (no run yet): <strong>1</strong> of 20 needed" in card
    assert "only the label count starts the first run" in card


def test_the_label_threshold_starts_the_first_run(app):
    change_settings(app, {"scheduler": {"min_new_labels": 3}})
    for seed in (5, 6):
        _label(seed=seed)
    assert jobs.trigger_reason(jobs.current_trigger_state(), app.extensions["medal"].settings.scheduler) is None
    _label(seed=7)
    assert jobs.trigger_reason(jobs.current_trigger_state(), app.extensions["medal"].settings.scheduler) == "labels"


def test_after_a_run_the_interval_counts_from_the_first_new_label(trained_app, client):
    cfg = trained_app.extensions["medal"].settings.scheduler
    last = db.session.execute(db.select(TrainingRun)).scalar_one()
    last.started_at -= timedelta(days=2)  # the last run was long ago
    last.finished_at -= timedelta(days=2)
    db.session.commit()
    _label()
    now = utcnow()
    assert jobs.trigger_reason(jobs.current_trigger_state(now), cfg) is None  # one label waits for more
    login(client, "engineer")
    card = client.get("/training").get_data(as_text=True)
    assert "New doctor labels since the last run: <strong>1</strong> of 20 needed" in card
    assert "Oldest new label waiting: <strong>0</strong> of 60 min" in card
    later = now + timedelta(minutes=cfg.train_interval_minutes + 1)
    assert jobs.trigger_reason(jobs.current_trigger_state(later), cfg) == "interval"


def test_plateau_rule():
    assert not jobs.plateaued([0.01, 0.0005], runs=3, min_delta=0.002)  # too few runs
    assert jobs.plateaued([0.05, 0.001, -0.01, 0.0], runs=3, min_delta=0.002)
    assert not jobs.plateaued([0.0, 0.0, 0.01], runs=3, min_delta=0.002)


def test_label_count_triggers_a_run_and_the_new_candidate(trained_app, monkeypatch):
    change_settings(trained_app, {"scheduler": {"min_new_labels": 3}})
    jobs.bind(trained_app)
    doctor = _user("doctor")
    for _ in range(3):
        image = queue.next_for(doctor)
        queue.submit(doctor, image.id, "pneumonia")
    done = jobs.tick()
    assert done["trained"]["status"] == "succeeded" and done["trained"]["version"] == 2
    run = db.session.get(TrainingRun, done["trained"]["run"])
    assert run.trigger == "labels" and run.num_labels == 3 and run.parent_version == 1
    assert trained_app.extensions["medal"].registry.version_for("candidate") == 2
    assert jobs.tick() == {}  # nothing new: nothing to do


def test_manual_run_is_picked_up_and_scoring_follows_a_new_champion(trained_app):
    jobs.bind(trained_app)
    runs.enqueue("manual", _user("engineer"))
    assert jobs.tick()["trained"]["status"] == "succeeded"
    trained_app.extensions["medal"].registry.set_alias("champion", 2)
    seed_pool(2, seed=321)
    done = jobs.tick()
    assert done["scored"]["version"] == 2
    assert db.session.execute(db.select(db.func.count(QueryScore.id)).filter_by(model_version=2)).scalar_one() > 0


def test_killed_worker_leaves_the_run_failed_and_the_next_goes_on(trained_app):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = TrainingRun(trigger="labels", status="running", worker_pid=dead.pid)
    db.session.add(stale)
    db.session.commit()
    assert jobs.recover_interrupted() == 1
    db.session.refresh(stale)
    assert stale.status == "failed" and "stopped during this run" in stale.error
    jobs.bind(trained_app)
    runs.enqueue("manual")
    assert jobs.tick()["trained"]["status"] == "succeeded"


def test_a_failing_run_is_marked_failed_with_its_error(app):
    run = runs.run(runs.enqueue("manual"))  # no labeled data at all
    assert run.status == "failed" and "at least 10" in run.error and run.finished_at


def test_one_worker_per_home(app):
    lock = worker.hold_lock(app.config["MEDAL_HOME"])
    with pytest.raises(worker.WorkerAlreadyRunning):
        worker.hold_lock(app.config["MEDAL_HOME"])
    lock.close()
    worker.hold_lock(app.config["MEDAL_HOME"]).close()


def test_scheduler_jobs_coalesce_and_never_overlap(app):
    scheduler = worker.build_scheduler(app)
    jobs_by_id = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs_by_id) == {"tick", "cleanup", "drift", "clinical_fit"}  # pacs_pull only when pacs.url is set
    assert all(job.max_instances == 1 and job.coalesce for job in jobs_by_id.values())
    # drift is first measured minutes after start, not after its whole interval
    assert jobs_by_id["drift"].next_run_time <= datetime.now(UTC) + timedelta(minutes=3)


def test_the_scheduler_waits_for_a_long_write_instead_of_stopping_on_a_locked_database(app):
    """A write held longer than sqlite3's default 5 s (a drift pass, a gate run) once stopped the worker."""
    scheduler = worker.build_scheduler(app)
    store = scheduler._jobstores["default"]
    store.start(scheduler, "default")
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as a long transaction holds it
    released = threading.Timer(6.5, lambda: holder.execute("COMMIT"))
    released.start()
    store.add_job(scheduler.get_job("tick"))  # waits for the lock (database.sqlite_busy_seconds), then writes
    released.join()
    holder.close()
    assert store.lookup_job("tick") is not None


def test_plateau_is_read_from_the_finished_runs_in_the_database(app):
    for delta in (0.05, 0.001, -0.004, 0.0):
        db.session.add(
            TrainingRun(trigger="test", status="succeeded", parent_version=1, metrics={"gold_macro_auc_delta": delta})
        )
    db.session.commit()
    assert jobs.run_improvements() == [0.05, 0.001, -0.004, 0.0]
    assert jobs.current_trigger_state().plateaued  # the last three improved < 0.002
    db.session.add(
        TrainingRun(trigger="test", status="succeeded", parent_version=1, metrics={"gold_macro_auc_delta": 0.03})
    )
    db.session.commit()
    assert not jobs.current_trigger_state().plateaued


def test_cleanup_drops_expired_claims_and_old_scores_of_other_versions(trained_app):
    from datetime import timedelta

    from webapp.models import Claim, utcnow

    jobs.bind(trained_app)
    pool = seed_pool(3, seed=66)
    now = utcnow()
    db.session.add(Claim(image_id=pool[0], user_id=_user("doctor").id, expires_at=now - timedelta(seconds=1)))
    db.session.add(Claim(image_id=pool[1], user_id=_user("doctor2").id, expires_at=now + timedelta(minutes=5)))
    old = QueryScore(
        image_id=pool[2], model_version=99, strategy="margin", score=0.5, rank=0, created_at=now - timedelta(days=8)
    )
    recent = QueryScore(image_id=pool[2], model_version=98, strategy="margin", score=0.5, rank=0)
    db.session.add_all([old, recent])
    db.session.commit()
    champion_scores = db.session.execute(db.select(db.func.count(QueryScore.id)).filter_by(model_version=1)).scalar()
    assert jobs.cleanup() == {"claims": 1, "old_scores": 1, "activation_trunks": 0}
    assert db.session.get(Claim, pool[0]) is None and db.session.get(Claim, pool[1]) is not None
    assert [
        s.model_version
        for s in db.session.execute(db.select(QueryScore).filter(QueryScore.model_version > 1)).scalars()
    ] == [98]
    assert (
        db.session.execute(db.select(db.func.count(QueryScore.id)).filter_by(model_version=1)).scalar()
        == champion_scores
    )  # the champion's scores stay


def test_the_heavy_jobs_and_commands_take_turns_on_the_cores(app, tiny):
    """A drift pass and `medal score` run by hand wait while another holder has the cores (the
    worker's run and re-score, or `medal train` in another process: the turn is an flock on
    MEDAL_HOME), then run: each takes every core it is given, and two at once oversubscribe them."""
    import fcntl
    from pathlib import Path

    from webapp.inference.threads import cpu_turn
    from webapp.monitoring import drift

    seed_pool(4)
    jobs.bind(app)
    home = app.extensions["medal"].settings.home
    runner = app.test_cli_runner()
    done: dict[str, object] = {}

    def score_by_hand() -> None:
        with app.app_context():  # as the medal command line runs a command
            done["score"] = runner.invoke(args=["score"])

    waiting = [threading.Thread(target=lambda: done.update(drift=drift.job())), threading.Thread(target=score_by_hand)]
    with cpu_turn(home):  # what tick holds while it trains and scores, and `medal train` while it trains
        for thread in waiting:
            thread.start()
        for thread in waiting:
            thread.join(1.0)
        assert done == {}  # both still wait for the cores
    for thread in waiting:
        thread.join(120)
    assert set(done) == {"drift", "score"}
    assert done["score"].exit_code == 0, done["score"].output  # type: ignore[attr-defined]
    assert "Scored 4 pool images" in done["score"].output  # type: ignore[attr-defined]
    with open(Path(home) / "cpu.lock", "a") as handle:  # and the cores are free again, for any process
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
