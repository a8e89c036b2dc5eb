"""`medal worker` stays up: a database locked past its busy timeout, at start or while it runs, never
stops it, and `make demo` restarts a worker that exits, saying why (real processes, a real SQLite file)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[3]
MEDAL = [sys.executable, "-c", "import sys; from webapp.cli import main; sys.exit(main())"]
# a busy timeout far shorter than the lock below, so every write of the worker meets "database is locked"
FAST = {"MEDAL_DATABASE__SQLITE_BUSY_SECONDS": "0.2", "MEDAL_SCHEDULER__CHECK_SECONDS": "1"}
QUIET = {"MEDAL_MONITORING__WORKER_PORT": "0"}  # no metrics port: tests and a demo may run side by side


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.2)
    output = log.read_text()[-4000:] if log and log.exists() else ""
    state = "running" if process is None or process.poll() is None else f"exited with {process.returncode}"
    raise AssertionError(f"never saw {what} (worker {state}):\n{output}")


def tick_time(database: Path) -> float | None:
    """When the scheduler next runs its tick, as it stored it (advances each time it processed the tick)."""
    connection = sqlite3.connect(database, timeout=5)
    try:
        row = connection.execute("SELECT next_run_time FROM scheduler_jobs WHERE id = 'tick'").fetchone()
    except sqlite3.OperationalError:  # the worker has not created its table yet
        return None
    finally:
        connection.close()
    return row[0] if row else None


def ticking(database: Path, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    """Wait until the scheduler processed its tick twice more from now."""
    for _ in range(2):
        before = tick_time(database)
        wait_for(
            lambda before=before: tick_time(database) not in (None, before),
            timeout,
            "the tick rescheduled",
            process,
            log,
        )


class WriteLock:
    """The database's write lock, held by another connection the way a long write holds it."""

    def __init__(self, database: Path):
        self.connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)

    def __enter__(self):
        self.connection.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *_):
        self.connection.execute("COMMIT")
        self.connection.close()


@pytest.fixture
def database(app) -> Path:
    from webapp.extensions import db

    db.session.commit()  # this test's session holds no lock
    return Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))


@pytest.fixture
def start_worker(tmp_path):
    started: list[subprocess.Popen] = []

    def start(log: Path) -> subprocess.Popen:
        env = dict(os.environ, **FAST, **QUIET)
        with log.open("w") as output:
            process = subprocess.Popen(MEDAL + ["worker"], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def test_the_worker_starts_while_the_database_is_locked(database, start_worker, tmp_path):
    log = tmp_path / "worker.log"
    with WriteLock(database):
        worker = start_worker(log)
        wait_for(lambda: "database is locked" in log.read_text(), 90, "the locked database", worker, log)
        time.sleep(2)  # several tries at a locked database
        assert worker.poll() is None, log.read_text()[-4000:]
    ticking(database, worker, log)
    assert worker.poll() is None
    assert "could not start (" in log.read_text() and "starting again in" in log.read_text()  # and why


def test_the_worker_outlives_a_database_locked_while_it_runs(database, start_worker, tmp_path):
    log = tmp_path / "worker.log"
    worker = start_worker(log)
    ticking(database, worker, log)
    with WriteLock(database):
        time.sleep(4)  # ticks come due every second; each write to the job store meets the lock
    assert worker.poll() is None, log.read_text()[-4000:]
    ticking(database, worker, log)
    assert "database is locked" in log.read_text()  # it did meet the lock, and said so
    assert worker.poll() is None


def is_worker(process: psutil.Process) -> bool:
    try:
        return "worker" in process.cmdline() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:  # gone meanwhile
        return False


def medal_workers(supervisor: psutil.Process) -> list[psutil.Process]:
    return [child for child in supervisor.children() if is_worker(child)]


def test_make_demo_restarts_a_worker_that_died_and_make_stop_stops_both(database, home, tmp_path):
    """demo.sh runs the worker under scripts/supervise.sh, as systemd runs it in deploy/ (Restart=on-failure)."""
    log = home / "worker.log"
    env = dict(os.environ, SUPERVISE_RESTART_SECONDS="1", **QUIET)
    with log.open("w") as output:
        supervisor = subprocess.Popen(
            ["bash", "scripts/supervise.sh", *MEDAL, "worker"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    (home / "worker.pid").write_text(str(supervisor.pid))
    try:
        watched = psutil.Process(supervisor.pid)
        wait_for(lambda: "worker started" in log.read_text(), 90, "the worker running", supervisor, log)
        [first] = wait_for(lambda: medal_workers(watched), 30, "the worker's process", supervisor, log)
        first.send_signal(signal.SIGKILL)  # the way "database is locked" once ended it: it is gone
        [second] = wait_for(
            lambda: [p for p in medal_workers(watched) if p.pid != first.pid], 30, "a new worker", supervisor, log
        )
        assert f"{first.pid}" in log.read_text() and "killed by signal 9 (KILL)" in log.read_text()
        wait_for(lambda: log.read_text().count("worker started") >= 2, 90, "the new worker running", supervisor, log)
        stopped = subprocess.run(["bash", "scripts/demo.sh", "stop"], cwd=ROOT, env=env, capture_output=True, text=True)
        assert stopped.returncode == 0 and "stopped worker" in stopped.stdout, stopped.stderr
        wait_for(lambda: supervisor.poll() is not None, 60, "the supervisor stopped", None, log)
        assert supervisor.returncode == 0 and "supervise: stopped" in log.read_text()
        assert not second.is_running()  # the worker went with its supervisor: nothing left running
        assert not (home / "worker.pid").exists()
    finally:  # on a failure: the workers first, which the supervisor's end would orphan
        for process in psutil.Process().children(recursive=True):
            if is_worker(process):
                process.kill()
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()


def test_a_session_that_read_then_writes_waits_for_a_long_writer(app, database):
    """pysqlite begins a transaction at its first write, never at a read: a read then a write waits out
    the busy timeout like any write, instead of SQLITE_BUSY at once (what BEGIN on every read would do)."""
    from webapp.extensions import db
    from webapp.models import TrainingRun

    assert db.session.execute(db.select(TrainingRun)).first() is None  # a read first
    with db.engine.connect() as other:  # a write committed by another connection since that read
        other.execute(db.insert(TrainingRun).values(trigger="cli", status="failed"))
        other.commit()
    lock = WriteLock(database).__enter__()  # and a long write in progress
    released = threading.Timer(1.0, lock.__exit__)
    released.start()
    db.session.add(TrainingRun(trigger="manual", status="failed"))
    db.session.commit()  # waits for the lock, then writes
    released.join()
    assert db.session.execute(db.select(db.func.count(TrainingRun.id))).scalar_one() == 2


def test_a_fine_tune_lets_others_write_while_the_gate_measures_it(candidate_app, database, monkeypatch):
    """The gate evaluates two models on the gold set (minutes on a CPU); a run that kept its row's
    changes unsaved meanwhile held SQLite's write lock all along, and the worker's own lease renewal,
    the scheduler's job store and every doctor's label waited for it until "database is locked"."""
    from webapp.approvals import gate_run
    from webapp.training import runs

    measure, refused = gate_run.evaluate_version, []

    def measure_while_another_writes(version, examples):
        other = sqlite3.connect(database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # what any writer needs; fails at once if the lock is held
            other.execute("ROLLBACK")
        except sqlite3.OperationalError as error:
            refused.append(f"v{version}: {error}")
        finally:
            other.close()
        return measure(version, examples)

    monkeypatch.setattr(gate_run, "evaluate_version", measure_while_another_writes)  # the real gate, observed
    run = runs.run(runs.enqueue("manual"))
    assert run.status == "succeeded" and run.model_version == 3, run.error
    assert refused == []


@pytest.fixture
def impatient_app(home, monkeypatch, request):
    """The app with a busy timeout of 0.2 s: a write held longer meets "database is locked"."""
    monkeypatch.setenv("MEDAL_DATABASE__SQLITE_BUSY_SECONDS", "0.2")
    return request.getfixturevalue("app")


def test_a_run_outlasts_a_write_held_past_the_busy_timeout(impatient_app, database):
    from webapp.training import runs

    queued = runs.enqueue("manual")
    lock = WriteLock(database).__enter__()
    released = threading.Timer(1.0, lock.__exit__)
    released.start()
    run = runs.run(queued)  # its first write meets the lock for a second, five times the busy timeout
    released.join()
    assert run.status == "failed" and "at least 10" in run.error  # its own outcome (no data), not the lock's
