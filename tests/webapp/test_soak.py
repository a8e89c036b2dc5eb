"""Issue 19's soak: 20 uploaders and 20 reviewers against gunicorn on SQLite for SOAK_SECONDS (600)
while the worker fine-tunes and a drift pass runs. It ends with the worker alive, no 5xx, every label
answered 201 stored exactly once, and every upload stored whole (row, file, prediction) or refused
(nothing left behind). Its figures go to soak.json in the test's directory (docs/reliability.md)."""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import pytest
import requests

from tests import synthetic
from tests.conftest import seed_pool
from tests.deployment.harness import BIN, ROOT, Deployment, free_port
from tests.webapp.upload.hostile_corpus import OK, corpus
from webapp.extensions import db
from webapp.models import DriftReference, Image, ImageDriftStats, Label, Prediction, TrainingRun, User, utcnow

SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
UPLOADERS, REVIEWERS, WEB_WORKERS = 20, 20, 4
HOSTILE_SHARE, DICOM_SHARE = 0.1, 0.15
# the worker checks its triggers every few seconds and fine-tunes on every 20 new labels, without ever
# calling it a plateau; drift measures every 2 minutes (its first pass: 2 minutes after the start)
WORKER_ENV = {
    "MEDAL_SCHEDULER__CHECK_SECONDS": "5",
    "MEDAL_SCHEDULER__MIN_NEW_LABELS": "20",
    "MEDAL_SCHEDULER__PLATEAU_RUNS": "0",
    "MEDAL_DRIFT__INTERVAL_MINUTES": "2",
    "MEDAL_MONITORING__WORKER_PORT": "0",  # no metrics port: other tests may run a worker beside this one
}


@dataclass
class Tally:
    """What one client thread saw: (route, status, seconds) per request, and what it was told."""

    requests: list[tuple[str, int, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # no answer at all (connection reset, timeout)
    stored: list[int] = field(default_factory=list)  # image ids answered 201
    refused: Counter = field(default_factory=Counter)  # status of each hostile upload
    labels: list[int] = field(default_factory=list)  # label ids answered 201

    def send(self, session: requests.Session, route: str, method: str, url: str, **kwargs):
        started = time.perf_counter()
        try:
            response = session.request(method, url, timeout=180, **kwargs)
        except requests.RequestException as error:
            self.errors.append(f"{route}: {type(error).__name__}: {error}"[:300])
            return None
        self.requests.append((route, response.status_code, time.perf_counter() - started))
        return response


def _film(seed: int, dicom: bool) -> tuple[bytes, str]:
    """A distinct synthetic radiograph (a new seed: never a re-upload), as PNG or CR DICOM."""
    image = synthetic.radiograph(seed % 2, size=64, seed=seed)
    if dicom:
        return synthetic.dicom_bytes(image), "film.dcm"
    return synthetic.png_bytes(image), "film.png"


def _uploader(base: str, token: str, number: int, hostile: list, until: float, tally: Tally) -> None:
    rng = random.Random(number)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    sent = 0
    while time.monotonic() < until:
        sent += 1
        roll = rng.random()
        if roll < HOSTILE_SHARE:
            case = hostile[rng.randrange(len(hostile))]
            data, name = case.data, case.filename
        else:
            data, name = _film(1_000_000 + number * 100_000 + sent, dicom=roll < HOSTILE_SHARE + DICOM_SHARE)
        response = tally.send(
            session, "POST /api/v1/images", "POST", f"{base}/api/v1/images", files={"file": (name, data)}
        )
        if response is not None:
            if roll < HOSTILE_SHARE:
                tally.refused[response.status_code] += 1
            elif response.status_code == 201:
                tally.stored.append(response.json()["image_id"])
        time.sleep(0.25)  # the next film comes off the scanner


def _reviewer(base: str, token: str, number: int, classes: list[str], until: float, tally: Tally) -> None:
    rng = random.Random(10_000 + number)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    while time.monotonic() < until:
        served = tally.send(session, "GET /api/v1/review/next", "GET", f"{base}/api/v1/review/next")
        if served is None or served.status_code != 200:
            time.sleep(0.5)
            continue
        body = served.json()
        if body["image"] is None:
            time.sleep(1)  # the pool is empty for now: uploads will fill it
            continue
        predicted = body["prediction"]["predicted_class"]
        answer = predicted if rng.random() < 0.8 else rng.choice([name for name in classes if name != predicted])
        saved = tally.send(
            session,
            "POST /api/v1/images/<id>/labels",
            "POST",
            f"{base}/api/v1/images/{body['image']['id']}/labels",
            json={"label": answer, "prediction_id": body["prediction"]["id"], "time_spent_ms": 1500},
        )
        if saved is not None and saved.status_code == 201:
            tally.labels.append(saved.json()["id"])
        time.sleep(0.1)


@pytest.fixture
def deployment(tmp_path):
    """The web and worker processes of this test; every process group it started is killed at the end,
    whatever happened."""
    started = Deployment(root=tmp_path / "deployment", env_overrides={})
    yield started
    started.stop()


def _percentiles(seconds: list[float]) -> dict:
    if not seconds:
        return {"n": 0}
    values = np.array(seconds) * 1000
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(values, 50)), 1),
        "p99_ms": round(float(np.percentile(values, 99)), 1),
        "max_ms": round(float(values.max()), 1),
    }


@pytest.mark.slow
def test_soak_uploads_reviews_fine_tunes_and_drift(trained_app, deployment, home, tmp_path):
    from webapp.auth.tokens import create_token

    started_setup = time.monotonic()
    classes = list(trained_app.extensions["medal"].settings.classes)
    users = []
    for role, count in (("uploader", UPLOADERS), ("reviewer", REVIEWERS)):
        for i in range(count):
            person = User(username=f"{role}{i}", role="doctor")
            person.set_password(uuid.uuid4().hex)
            db.session.add(person)
            users.append(person)
    db.session.commit()
    tokens = [create_token(person) for person in users]
    uploader_tokens, reviewer_tokens = tokens[:UPLOADERS], tokens[UPLOADERS:]
    reviewer_ids = {person.id for person in users[UPLOADERS:]}
    seed_pool(200, seed=11)  # beside the trained app's 12: work for the reviewers from the first second
    hostile = [case for case in corpus() if case.expect != OK]
    images_before = db.session.execute(db.select(db.func.count(Image.id))).scalar_one()
    runs_before = db.session.execute(db.select(db.func.max(TrainingRun.id))).scalar_one()
    db.session.remove()
    db.engine.dispose()  # the web and worker processes own the database now

    deployment.env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(ROOT),
        **WORKER_ENV,
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    deployment.spawn(
        "web",
        [str(BIN / "medal"), "web", "--host", "127.0.0.1", "--port", str(port), "--workers", str(WEB_WORKERS)],
    )
    deployment.spawn("worker", [str(BIN / "medal"), "worker"])
    deployment.wait_http("web", f"{base}/health", 120)
    setup_seconds = time.monotonic() - started_setup

    uploads = [Tally() for _ in range(UPLOADERS)]
    reviews = [Tally() for _ in range(REVIEWERS)]
    started = time.monotonic()
    until = started + SECONDS
    threads = [
        threading.Thread(target=_uploader, args=(base, token, i, hostile, until, tally))
        for i, (token, tally) in enumerate(zip(uploader_tokens, uploads))
    ] + [
        threading.Thread(target=_reviewer, args=(base, token, i, classes, until, tally))
        for i, (token, tally) in enumerate(zip(reviewer_tokens, reviews))
    ]
    for thread in threads:
        thread.start()
    # a drift pass the soak is sure to see, whatever its length: `medal drift measure` half-way, beside
    # the worker's own passes (every 2 minutes from 2 minutes after its start)
    time.sleep(SECONDS / 2)
    drift_cli = deployment.spawn("drift", [str(BIN / "medal"), "drift", "measure"])
    for thread in threads:
        thread.join()
    soak_seconds = time.monotonic() - started
    ended = utcnow()  # a run failed by the stop below is not the soak's
    drift_cli_rc = drift_cli.wait(timeout=300)
    worker_alive = deployment.alive("worker")
    web_alive = deployment.alive("web")
    # the worker's log as the soak left it: a SIGTERM during a fine-tune fails that run, with a traceback
    worker_log = (deployment.logs / "worker.log").read_text(errors="replace")
    deployment.stop()  # web and worker: SIGTERM to their groups, then SIGKILL to any straggler

    web_log = (deployment.logs / "web.log").read_text(errors="replace")
    all_tallies = uploads + reviews
    statuses = Counter(status for tally in all_tallies for _, status, _ in tally.requests)
    per_route: dict[str, list[float]] = defaultdict(list)
    route_statuses: dict[str, Counter] = defaultdict(Counter)
    for tally in all_tallies:
        for route, status, seconds in tally.requests:
            per_route[route].append(seconds)
            route_statuses[route][status] += 1
    errors = [error for tally in all_tallies for error in tally.errors]
    stored_ids = [image_id for tally in uploads for image_id in tally.stored]
    refused = sum((tally.refused for tally in uploads), Counter())
    answered = [label_id for tally in reviews for label_id in tally.labels]

    # --- what the database and the image store hold afterwards -----------------------------------
    images = {row.id: row.path for row in db.session.execute(db.select(Image.id, Image.path))}
    predicted = set(db.session.execute(db.select(Prediction.image_id).distinct()).scalars())
    store = home / "images"
    files = {str(path.relative_to(store)) for path in store.rglob("*") if path.is_file()}
    review_labels = db.session.execute(db.select(Label.id, Label.image_id).where(Label.user_id.in_(reviewer_ids))).all()
    per_image = Counter(image_id for _, image_id in review_labels)
    runs = db.session.execute(db.select(TrainingRun).where(TrainingRun.id > (runs_before or 0))).scalars().all()
    runs = [run for run in runs if run.status != "failed" or run.finished_at is None or run.finished_at < ended]
    drift_images = db.session.execute(db.select(db.func.count()).select_from(ImageDriftStats)).scalar_one()
    drift_references = db.session.execute(db.select(db.func.count()).select_from(DriftReference)).scalar_one()
    worker_drift_passes = worker_log.count("drift: measured")

    figures = {
        "soak_seconds": round(soak_seconds, 1),
        "setup_seconds": round(setup_seconds, 1),
        "uploaders": UPLOADERS,
        "reviewers": REVIEWERS,
        "web_workers": WEB_WORKERS,
        "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
        "cpus": os.cpu_count(),
        "requests": sum(statuses.values()),
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
        "no_answer": len(errors),
        "uploads_stored_201": len(stored_ids),
        "uploads_refused": dict(sorted((str(code), count) for code, count in refused.items())),
        "labels_answered_201": len(answered),
        "review_labels_stored": len(review_labels),
        "lost_labels": len(set(answered) - {label_id for label_id, _ in review_labels}),
        "labels_stored_without_201": len({label_id for label_id, _ in review_labels} - set(answered)),
        "images_with_two_review_labels": sum(1 for count in per_image.values() if count > 1),
        "images_before": images_before,
        "images_after": len(images),
        "files_in_store": len(files),
        "runs": Counter(f"{run.kind}:{run.status}" for run in runs),
        "drift_passes_worker": worker_drift_passes,
        "drift_cli_rc": drift_cli_rc,
        "drift_images_measured": drift_images,
        "drift_references": drift_references,
        "worker_alive": worker_alive,
        "web_alive": web_alive,
        "worker_tracebacks": worker_log.count("Traceback"),
        "worker_restarts": worker_log.count("starting again in"),
        "web_tracebacks": web_log.count("Traceback"),
        "web_worker_timeouts": web_log.count("WORKER TIMEOUT"),
        "latency": {route: _percentiles(seconds) for route, seconds in sorted(per_route.items())},
        "statuses_per_route": {route: dict(counts) for route, counts in sorted(route_statuses.items())},
    }
    text = json.dumps(figures, indent=2, default=dict)
    (tmp_path / "soak.json").write_text(text + "\n")
    print(text)

    assert worker_alive, worker_log[-4000:]
    assert figures["worker_restarts"] == 0 and figures["worker_tracebacks"] == 0, worker_log[-6000:]
    assert web_alive, web_log[-4000:]
    assert not [code for code in statuses if code >= 500], (figures, web_log[-6000:])
    assert not errors, errors[:10]
    # labels: each answered 201 stored once, none stored unanswered, no image reviewed twice
    assert len(answered) == len(set(answered)) and answered, figures
    assert sorted(answered) == sorted(label_id for label_id, _ in review_labels), figures
    assert figures["images_with_two_review_labels"] == 0, figures
    # uploads: each 201 has its row, its file and its prediction; each refusal a 4xx and nothing left
    assert stored_ids and len(stored_ids) == len(set(stored_ids)), figures
    missing = [i for i in stored_ids if i not in images or images[i] not in files or i not in predicted]
    assert not missing, (missing[:10], figures)
    assert refused and all(400 <= code < 500 for code in refused), figures
    assert files == set(images.values()), (sorted(files - set(images.values()))[:10], figures)
    assert len(images) == images_before + len(stored_ids), figures
    # the background work happened meanwhile
    assert any(run.status == "succeeded" for run in runs), figures
    assert drift_cli_rc == 0 and drift_references >= 1 and drift_images > 0, figures
