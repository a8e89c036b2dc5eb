"""The hospital topology end to end: PostgreSQL, an MLflow server with its artifact store, two web
processes and one worker, all separate processes. A doctor's labels on web 1 start a fine-tune in
the worker; an engineer approves on web 2; both web processes then serve the new champion."""

from __future__ import annotations

import re
import time

import pytest

from tests import synthetic
from tests.conftest import TEST_ENV
from tests.deployment.harness import Deployment, call, upload
from tests.postgres import PostgresUnavailable, TemporaryPostgres

pytestmark = pytest.mark.slow

NEW_LABELS = 6  # the fine-tune trigger (scheduler.min_new_labels)
POLL_SECONDS = 4  # serving.poll_seconds of both web processes
PASSWORD = "deployment-pass"
ENV = TEST_ENV | {
    "MEDAL_SCHEDULER__MIN_NEW_LABELS": str(NEW_LABELS),
    "MEDAL_SCHEDULER__CHECK_SECONDS": "2",
    "MEDAL_SERVING__POLL_SECONDS": str(POLL_SECONDS),
}


@pytest.fixture
def deployment(tmp_path):
    try:
        TemporaryPostgres()  # only checks the binaries are there
    except PostgresUnavailable as error:
        pytest.skip(str(error))
    found = Deployment(tmp_path, ENV)
    try:
        yield found
    finally:
        found.stop()  # every process, also when the test failed
        for name in found.processes:
            print(f"--- {name} log (tail) ---\n{found.log_tail(name, 1500)}")


def _write_images(root, n: int, seed: int, labeled: bool) -> None:
    images, labels = synthetic.dataset(n, seed=seed)
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / (synthetic.CLASSES[label] if labeled else "")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{seed}-{i}.png").write_bytes(synthetic.png_bytes(image))


def _wait(what: str, check, timeout: float, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_label_train_approve_and_serve_across_processes(deployment, tmp_path):
    timings: dict[str, float] = {}
    started = time.monotonic()

    def mark(name: str) -> None:
        timings[name] = round(time.monotonic() - started, 1)

    deployment.start_databases()
    mark("postgres")
    deployment.start_mlflow()  # it migrates its own database meanwhile
    deployment.configure_medal()
    deployment.medal("db", "upgrade")
    _write_images(tmp_path / "train", 40, seed=1, labeled=True)
    _write_images(tmp_path / "pool", 24, seed=7, labeled=False)
    deployment.medal_together(
        [
            ["users", "create", "doctor", "--role", "doctor", "--password", PASSWORD],
            ["users", "create", "engineer", "--role", "engineer", "--password", PASSWORD],
            ["import", str(tmp_path / "train"), "--split", "train"],
            ["import", str(tmp_path / "pool"), "--split", "pool"],
        ]
    )
    doctor, engineer = (
        out.strip().splitlines()[-1]
        for out in deployment.medal_together([["tokens", "create", "doctor"], ["tokens", "create", "engineer"]])
    )
    mark("migrated; users, tokens, 64 images imported")
    deployment.wait_mlflow()
    mark("mlflow server up")
    assert "registered model version 1" in deployment.medal("train")  # the first model bootstraps as champion
    mark("first model trained and registered (medal train)")

    deployment.start_worker()
    web1, web2 = deployment.start_web("web1", workers=2), deployment.start_web("web2", workers=2)
    for name, url in (("web1", web1), ("web2", web2)):
        deployment.wait_http(name, f"{url}/health", timeout=180)
    mark("worker and two web processes up")

    # --- a doctor labels through web 1 ----------------------------------------------------------
    labeled = []
    for _ in range(NEW_LABELS):
        served = call(f"{web1}/api/v1/review/next", token=doctor)
        assert served.status == 200 and served.body["image"], served.body
        assert served.body["prediction"]["model_version"] == 1
        image_id = served.body["image"]["id"]
        answer = call(
            f"{web1}/api/v1/images/{image_id}/labels",
            "POST",
            doctor,
            {"label": "pneumonia" if len(labeled) % 2 else "normal", "prediction_id": served.body["prediction"]["id"]},
        )
        assert answer.status == 201, answer.body
        labeled.append(image_id)
    assert len(set(labeled)) == NEW_LABELS  # the queue never served an image twice
    mark(f"{NEW_LABELS} labels through web1")

    # --- the worker fine-tunes a candidate and gates it -------------------------------------------
    def gated_candidate():
        assert deployment.alive("worker"), deployment.log_tail("worker")
        listing = call(f"{web2}/api/v1/models", token=engineer).body
        version = listing["aliases"].get("candidate")
        gate = next((v["gate"] for v in listing["versions"] if v["version"] == version), None)
        return (version, gate) if version and gate else None

    version, gate = _wait("the worker's candidate", gated_candidate, timeout=300)
    mark("candidate trained and gated by the worker")
    assert version == 2
    print(f"gate on the (empty) synthetic gold set: passed={gate['passed']} failures={gate['failures']}")

    # --- an engineer approves through web 2 -------------------------------------------------------
    decided = call(
        f"{web2}/api/v1/models/{version}/approve",
        "POST",
        engineer,
        {"reason": "deployment test", "override": not gate["passed"]},
    )
    assert decided.status == 200, decided.body
    assert decided.body["aliases"]["champion"] == version
    approved = time.monotonic()
    mark("approved through web2")

    # --- both web processes serve it within serving.poll_seconds ---------------------------------
    seen: dict[str, float] = {}
    late: dict[str, list[int]] = {"web1": [], "web2": []}
    seed = 1000
    while len(seen) < 2 or min(len(v) for v in late.values()) < 4:
        assert time.monotonic() - approved < 60, (seen, late)
        for name, url in (("web1", web1), ("web2", web2)):
            seed += 1
            sent = time.monotonic() - approved
            answer = upload(f"{url}/api/v1/images", doctor, synthetic.png_bytes(synthetic.radiograph(1, seed=seed)))
            assert answer.status == 201, answer.body
            served_version = answer.body["prediction"]["model_version"]
            if served_version == version:
                seen.setdefault(name, round(time.monotonic() - approved, 2))
            if sent >= POLL_SECONDS:  # asked after a full poll interval: every gunicorn worker has swapped
                late[name].append(served_version)
        time.sleep(0.25)
    for name, versions in late.items():
        assert set(versions) == {version}, f"{name} still served {versions} {POLL_SECONDS} s after approval"
    timings.update({f"{name} first served v{version} (s after approval)": s for name, s in seen.items()})

    # --- what went where ------------------------------------------------------------------------
    for image_id in labeled:
        labels = call(f"{web2}/api/v1/images/{image_id}", token=doctor).body["labels"]
        assert len(labels) == 1  # each label stored once, visible from the other process
    # the model files went through the MLflow server's artifact proxy into its store
    stored = sorted(deployment.artifacts.rglob("spec.json"))
    assert len(stored) >= 2, stored
    assert not (deployment.home / "mlartifacts").exists()
    errors = {name: re.findall(r'" 5\d\d ', deployment.log_tail(name, 10**7)) for name in ("web1", "web2", "mlflow")}
    assert not any(errors.values()), errors
    mark("checked")
    print("deployment timings (s since start):", timings)
