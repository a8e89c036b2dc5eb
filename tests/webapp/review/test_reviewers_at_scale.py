"""Must hold 3: 50 concurrent reviewers x 20 labels against gunicorn with several workers, on
SQLite (WAL, busy timeout) and PostgreSQL: every label stored once, no image labeled twice, no 5xx."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.conftest import _register_tiny, registry_of, seed_pool
from webapp.extensions import db
from webapp.models import Label, User

REVIEWERS, LABELS_EACH, WORKERS = 50, 20, 4
MEDAL = Path(sys.executable).parent / "medal"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_web(port: int, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        web = subprocess.Popen(
            [str(MEDAL), "web", "--port", str(port), "--workers", str(WORKERS)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if web.poll() is not None:
            raise AssertionError(f"medal web exited: {log.read_text()[-3000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return web
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    web.kill()
    raise AssertionError("medal web did not answer /health within 120 s")


def _reviewer(base: str, token: str) -> dict:
    """One doctor: ask for the next image, label it, twenty times (a 409 means: ask again)."""
    tally = {"requests": 0, "statuses": Counter(), "labels": [], "empty": 0}
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    while len(tally["labels"]) < LABELS_EACH:
        served = session.get(f"{base}/api/v1/review/next", timeout=120)
        tally["requests"] += 1
        tally["statuses"][served.status_code] += 1
        if served.status_code != 200:
            continue
        body = served.json()
        if body["image"] is None:
            tally["empty"] += 1
            break
        answer = {"label": body["prediction"]["predicted_class"], "prediction_id": body["prediction"]["id"]}
        saved = session.post(f"{base}/api/v1/images/{body['image']['id']}/labels", json=answer, timeout=120)
        tally["requests"] += 1
        tally["statuses"][saved.status_code] += 1
        if saved.status_code == 201:
            tally["labels"].append(saved.json()["id"])
    return tally


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_fifty_reviewers_against_gunicorn(request, tmp_path, database):
    from webapp.auth.tokens import create_token

    app = request.getfixturevalue("app" if database == "sqlite" else "pg_app")
    registry = registry_of(app)
    registry.set_alias("champion", _register_tiny(registry, 1))
    doctors = []
    for i in range(REVIEWERS):
        doctor = User(username=f"reviewer{i}", role="doctor")
        doctor.set_password("reviewer-pass")
        db.session.add(doctor)
        doctors.append(doctor)
    db.session.commit()
    tokens = [create_token(doctor) for doctor in doctors]
    pool = seed_pool(REVIEWERS * LABELS_EACH + 20, seed=5)
    db.session.remove()
    db.engine.dispose()  # the web processes own the database now

    port = _free_port()
    web = _start_web(port, tmp_path / "web.log")
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(REVIEWERS) as threads:
            tallies = list(threads.map(lambda token: _reviewer(f"http://127.0.0.1:{port}", token), tokens))
    finally:
        web.send_signal(signal.SIGINT)  # gunicorn's quick shutdown: the load is over
        try:
            web.wait(60)
        except subprocess.TimeoutExpired:
            web.kill()
            web.wait()
    seconds = time.monotonic() - started

    statuses = sum((tally["statuses"] for tally in tallies), Counter())
    answered = [label_id for tally in tallies for label_id in tally["labels"]]
    stored = db.session.execute(db.select(Label.id, Label.image_id, Label.user_id)).all()
    per_image = Counter(image_id for _, image_id, _ in stored)
    per_doctor = Counter(user_id for _, _, user_id in stored)
    figures = {
        "database": database,
        "requests": sum(tally["requests"] for tally in tallies),
        "statuses": dict(statuses),
        "labels_answered_201": len(answered),
        "labels_stored": len(stored),
        "lost": len(set(answered) - {label_id for label_id, _, _ in stored}),
        "doubled_images": sum(1 for count in per_image.values() if count > 1),
        "seconds": round(seconds, 1),
    }
    print(figures)
    (Path(os.environ.get("MEDAL_FIGURES_DIR", tmp_path)) / f"reviewers-{database}.txt").write_text(f"{figures}\n")
    assert not [code for code in statuses if code >= 500], figures
    assert len(answered) == len(set(answered)) == REVIEWERS * LABELS_EACH, figures
    assert sorted(answered) == sorted(label_id for label_id, _, _ in stored), figures  # each stored once, none lost
    assert set(per_image.values()) == {1} and set(per_image) <= set(pool), figures
    assert set(per_doctor.values()) == {LABELS_EACH}, figures
    assert statuses.get(409, 0) == 0, figures  # the queue never served an image someone else had
