"""Training never takes the CPU from review: `medal worker` and the other background commands run at
the configured nice value with the configured torch threads (real processes, read back from outside)."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
MEDAL = [sys.executable, "-c", "import sys; from webapp.cli import main; sys.exit(main())"]
# a medal command's process start, then what is in force: `--help` ends the command before it works
READ_BACK = """
import json, os, sys, torch
from webapp.cli import main
try:
    main([sys.argv[1], "--help"])
except SystemExit:
    pass
print(json.dumps([os.getpriority(os.PRIO_PROCESS, 0), torch.get_num_threads(), torch.get_num_interop_threads()]))
"""
SETTINGS = "{intra_op_threads: 3, inter_op_threads: 2, nice: 7}"


def _expected_nice() -> int:
    return max(7, os.getpriority(os.PRIO_PROCESS, 0))  # a process never raises its own priority


def _read_back(command: str, settings: str = SETTINGS) -> list[int]:
    env = dict(os.environ, MEDAL_INFERENCE__WORKER=settings)
    done = subprocess.run([sys.executable, "-c", READ_BACK, command], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_training_scoring_and_drift_commands_run_at_the_worker_priority_with_its_threads(home):
    for command in ("train", "score", "drift"):
        assert _read_back(command) == [_expected_nice(), 3, 2]


def test_zero_intra_op_threads_means_one_per_core_the_process_may_use(home):
    cores = len(os.sched_getaffinity(0))
    assert _read_back("train", "{intra_op_threads: 0, inter_op_threads: 1, nice: 7}") == [_expected_nice(), cores, 1]


def test_torchs_openmp_threads_sleep_while_they_wait_in_every_medal_process():
    """libgomp reads OMP_WAIT_POLICY once, when torch loads it: the command line sets it before
    anything brings torch, and leaves an operator's own value alone."""
    probe = "import os, sys; import webapp.cli; print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    env = {name: value for name, value in os.environ.items() if name != "OMP_WAIT_POLICY"}
    for preset, expected in ((None, "PASSIVE False"), ("ACTIVE", "ACTIVE False")):
        if preset:
            env["OMP_WAIT_POLICY"] = preset
        done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.strip() == expected


def test_a_command_that_is_not_background_work_keeps_its_priority(home):
    assert _read_back("users")[0] == os.getpriority(os.PRIO_PROCESS, 0)


def test_every_thread_of_a_running_worker_has_the_configured_priority(app, tmp_path):
    env = dict(os.environ, MEDAL_INFERENCE__WORKER=SETTINGS, MEDAL_MONITORING__WORKER_PORT="0")
    log = tmp_path / "worker.log"
    with open(log, "wb") as output:
        worker = subprocess.Popen(MEDAL + ["worker"], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        lock = Path(app.config["MEDAL_HOME"]) / "worker.lock"
        deadline = time.monotonic() + 120
        while not _held(lock):  # the worker takes its lock once its scheduler starts
            assert worker.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the worker never started"
            time.sleep(0.2)
        tasks = [int(task.name) for task in Path(f"/proc/{worker.pid}/task").iterdir()]
        assert len(tasks) > 1  # the scheduler's threads too, not the main thread alone
        assert {os.getpriority(os.PRIO_PROCESS, task) for task in tasks} == {_expected_nice()}
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)


def _held(lock: Path) -> bool:
    if not lock.exists():
        return False
    with open(lock) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
