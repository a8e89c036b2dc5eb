"""How fast the engineers' pages answer with real amounts of data: GET /dashboard and GET /clinical/models.

    .venv/bin/python scripts/bench_pages.py [--images 10000] [--versions 20] [--repeats 15]
                                            [--home instance/bench-pages] [--profile DIR] [--code TEXT]

Builds (once; later runs reuse it) a MEDAL_HOME holding what a busy deployment holds: `--images`
synthetic radiographs ingested as an import brings them (three sites, ages and sexes; a labeled
training split, a pool and an adjudicated gold set), `--versions` tiny `small_cnn` model versions
registered in the real MLflow store with a training run each, the pool scored by the first
champion (predictions and every strategy's query scores), every later version through the real
gate (gold scores, gate reports, audit events), promotions and a rollback, the pool scored again
by the champion it ends with, doctors' review labels under that champion with clinical data on
half of them, and the champion's drift statistics. The pages read rows, not pixels, so 32 px
images cost them nothing they would not cost at 224 px.

Then times each page through the Flask test client (in process: no network, no gunicorn), signed
in as an engineer: first one view of each in this fresh process (nothing drawn or compared yet,
as on the first view after the data changed), then `--repeats` rounds of the pages interleaved
with the upload form page (the same app's floor: session, access table, base template, no data).
Prints the first view, the median and [min, max] of each page and its ratio to the floor. Raw
timings go to docs/benchmarks/pages.json (every request, the machine and its load, and a hash of
each page's HTML without its CSRF tokens, so two runs of different code can show that they served
the same pages). `--profile DIR` also writes a cProfile of one request to each page.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLASSES = ["normal", "bacterial_pneumonia", "viral_pneumonia"]
SITES = ["north", "south", "east"]
PASSWORD = "bench-password"
PAGES = {"dashboard": "/dashboard", "clinical_models": "/clinical/models", "floor": "/upload"}
TARGETS_MS = {"dashboard": 1000, "clinical_models": 300}


def environment(home: Path) -> dict[str, str]:
    """Settings of the bench's MEDAL_HOME: the tiny network of the tests, the shipped classes."""
    return {
        "MEDAL_HOME": str(home),
        "MEDAL_CLASSES": json.dumps(CLASSES),
        "MEDAL_MODEL__BACKBONE": "small_cnn",
        "MEDAL_IMAGES__SIZE": "32",
        "MEDAL_GATE__MIN_SENSITIVITY": json.dumps({name: 0.0 for name in CLASSES}),
        "MEDAL_GATE__MIN_CLASS_GOLD": "0",
        "MEDAL_ACTIVE_LEARNING__MC_DROPOUT_PASSES": "2",
        "MEDAL_SERVING__POLL_SECONDS": "0",
    }


def radiograph(label: int, seed: int, site: int) -> bytes:
    """A 32 px chest-like PNG; a bacterial opacity or a diffuse viral haze; each site a little darker."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:32, 0:32] / 32
    image = 60 + 25 * rng.standard_normal((32, 32)) - 12 * site
    lungs = ((x - 0.3) ** 2 / 0.04 + (y - 0.5) ** 2 / 0.12 < 1) | ((x - 0.7) ** 2 / 0.04 + (y - 0.5) ** 2 / 0.12 < 1)
    image[~lungs] += 90
    if label == 1:
        image += 140 * np.exp(-((x - 0.3) ** 2 + (y - 0.7) ** 2) / 0.008)
    elif label == 2:
        image[lungs] += 40
    buffer = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def build(app, images: int, versions: int) -> dict:
    """Fill the empty home; returns what it holds and how long each step took."""
    import torch

    from learning.model import ModelSpec, XrayNet
    from registry.client import RunRecord
    from webapp.approvals import decisions
    from webapp.extensions import db
    from webapp.inference import scoring
    from webapp.models import ClinicalRecord, GoldItem, Label, Prediction, TrainingRun, User, utcnow
    from webapp.monitoring import drift
    from webapp.upload.ingest import ImageMeta, ingest

    steps: dict[str, float] = {}
    started = time.perf_counter()
    users = {}
    for name, role in (("doctor", "doctor"), ("doctor2", "doctor"), ("doctor3", "doctor"), ("engineer", "engineer")):
        users[name] = User(username=name, role=role)
        users[name].set_password(PASSWORD)
        db.session.add(users[name])
    db.session.commit()

    rng = np.random.default_rng(0)
    n_train, n_gold = images // 5, max(60, images // 30)
    for index in range(images):
        label, site = index % 3, int(rng.integers(3))
        split = "train" if index < n_train else "pool"
        meta = ImageMeta(SITES[site], int(rng.integers(1, 90)), str(rng.choice(["F", "M"])))
        image, _ = ingest(
            radiograph(label, index, site),
            origin="import",
            meta=meta,
            split=split,
            reference_label=CLASSES[label] if split == "train" else None,
        )
        if n_train <= index < n_train + n_gold:
            image.is_gold = True
            db.session.flush()
            db.session.add(
                GoldItem(image_id=image.id, status="final", final_label=CLASSES[label], finalized_at=utcnow())
            )
        if index % 500 == 499:
            db.session.commit()
    db.session.commit()
    steps["ingest"] = time.perf_counter() - started

    started = time.perf_counter()
    registry = app.extensions["medal"].registry
    for version in range(1, versions + 1):
        torch.manual_seed(version)
        net = XrayNet(ModelSpec("small_cnn", CLASSES, 32), pretrained=False).eval()
        record = RunRecord(params={"seed": version}, tags={"bench": "pages"})
        run_id = registry.log_run(net, record, run_name=f"bench-v{version}")
        assert registry.register(run_id) == version
        db.session.add(
            TrainingRun(
                status="succeeded",
                trigger="labels",
                model_version=version,
                parent_version=version - 1 or None,
                mlflow_run_id=run_id,
                num_labels=150 * version,
                num_train=n_train + 150 * version,
                started_at=utcnow(),
                finished_at=utcnow(),
            )
        )
    db.session.commit()
    registry.set_alias("champion", 1)
    steps["register"] = time.perf_counter() - started

    # the pool scored by the first champion: a prediction per pool image and every strategy's ranks
    started = time.perf_counter()
    scoring.score(1)
    steps["score"] = time.perf_counter() - started

    # every later version through the real gate; every fourth promoted, and the last promotion rolled back
    started = time.perf_counter()
    engineer = users["engineer"]
    for version in range(2, versions + 1):
        registry.set_alias("candidate", version)
        decisions.on_candidate(version)
        if version % 4 == 0:
            decisions.decide(version, engineer, approve=True, reason="better on gold", override=True)
    decisions.rollback(engineer, "misses on the south site")
    steps["gate"] = time.perf_counter() - started

    # the worker scores the pool again with the champion it ends with; doctors review under that one
    started = time.perf_counter()
    champion = scoring.score()["version"]
    steps["score_champion"] = time.perf_counter() - started

    # doctors answer a third of the pool; half of those studies carry clinical data
    started = time.perf_counter()
    doctors = [users["doctor"], users["doctor2"], users["doctor3"]]
    predictions = db.session.execute(
        db.select(Prediction.id, Prediction.image_id, Prediction.predicted_class)
        .filter_by(model_version=champion)
        .order_by(Prediction.id)
    ).all()
    labels, records = [], []
    for i, (prediction_id, image_id, predicted) in enumerate(predictions[: len(predictions) // 3]):
        answer = CLASSES[int(rng.integers(3))] if rng.random() < 0.3 else predicted
        labels.append(
            {
                "image_id": image_id,
                "user_id": doctors[i % 3].id,
                "prediction_id": prediction_id,
                "label": answer,
                "agreed": answer == predicted,
                "time_spent_ms": int(rng.integers(2000, 30000)),
                "channel": "web",
                "created_at": utcnow(),
            }
        )
        if i % 2 == 0:
            records.append(
                {
                    "image_id": image_id,
                    "temperature_c": float(rng.normal(37.5, 0.8)),
                    "crp_mg_l": float(abs(rng.normal(40, 30))),
                    "spo2_pct": int(rng.integers(88, 100)),
                    "entered_by_id": doctors[i % 3].id,
                    "created_at": utcnow(),
                }
            )
    db.session.execute(db.insert(Label), labels)
    db.session.execute(db.insert(ClinicalRecord), records)
    db.session.commit()
    steps["labels"] = time.perf_counter() - started

    started = time.perf_counter()
    drift.measure(limit=images)
    steps["drift"] = time.perf_counter() - started
    counts = {
        name: db.session.scalar(db.select(db.func.count()).select_from(db.text(name)))
        for name in (
            "image",
            "prediction",
            "label",
            "query_score",
            "clinical_record",
            "gold_item",
            "gate_report",
            "gold_score",
            "audit_event",
            "image_drift_stats",
        )
    }
    counts["versions"] = len(registry.versions())
    return {"rows": counts, "build_seconds": {k: round(v, 1) for k, v in steps.items()}}


def log_in(client) -> None:
    response = client.post("/login", data={"username": "engineer", "password": PASSWORD})
    assert response.status_code == 302, response.status_code


def page_hash(html: str) -> str:
    """The page's text without its per-session CSRF tokens: equal hashes, equal pages."""
    masked = re.sub(r'(name="csrf[-_]token" (?:content|value)=")[^"]*', r"\1", html)
    return hashlib.sha256(masked.encode()).hexdigest()


def commit() -> str:
    """The code measured: the commit, and whether the working tree differed from it."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return head.stdout.strip() + (" (modified)" if dirty.stdout.strip() else "") if head.returncode == 0 else "unknown"


def machine() -> dict:
    load = os.getloadavg()
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(), "loadavg": load}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--home", type=Path, default=ROOT / "instance" / "bench-pages")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "pages.json")
    parser.add_argument("--profile", type=Path, help="write a cProfile of one request per page here")
    parser.add_argument("--code", help="what code is measured (default: this checkout's commit)")
    args = parser.parse_args()

    home = args.home.resolve()
    for name in list(os.environ):
        if name.startswith("MEDAL_") or name in ("MLFLOW_TRACKING_URI", "DATABASE_URL"):
            del os.environ[name]
    os.environ.update(environment(home))
    manifest_path = home / "bench-pages.json"
    wanted = {"images": args.images, "versions": args.versions}
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    if manifest is not None and manifest.get("wanted") != wanted:
        raise SystemExit(f"{home} holds another build ({manifest.get('wanted')}); pass another --home")
    if manifest is None and home.exists() and any(home.iterdir()):
        raise SystemExit(f"{home} is not empty and holds no finished build; remove it or pass another --home")

    from flask_migrate import upgrade

    from webapp import create_app

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False})
    with app.app_context():
        if manifest is None:
            upgrade()
            print(f"building {home}: {args.images} images, {args.versions} versions ...", flush=True)
            manifest = {"wanted": wanted, **build(app, args.images, args.versions)}
            manifest_path.write_text(json.dumps(manifest, indent=1))
            print(f"built: {manifest}", flush=True)
        else:
            upgrade()  # a home built by an older release gets this release's schema

    client = app.test_client()
    log_in(client)
    first, content = {}, {}
    for name, path in PAGES.items():  # the first view in this process: nothing drawn or compared yet
        started = time.perf_counter()
        response = client.get(path)
        first[name] = round((time.perf_counter() - started) * 1000, 2)
        assert response.status_code == 200, (path, response.status_code)
        content[name] = page_hash(response.get_data(as_text=True))
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        for name, path in PAGES.items():
            profiler = cProfile.Profile()
            profiler.enable()
            client.get(path)
            profiler.disable()
            profiler.dump_stats(args.profile / f"{name}.prof")
    rows = []
    load_before = os.getloadavg()
    for repeat in range(args.repeats):
        for name, path in PAGES.items():
            started = time.perf_counter()
            response = client.get(path)
            elapsed_ms = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, (path, response.status_code)
            rows.append({"page": name, "path": path, "repeat": repeat, "ms": round(elapsed_ms, 2)})
    summary = {}
    for name in PAGES:
        times = [row["ms"] for row in rows if row["page"] == name]
        summary[name] = {
            "median_ms": statistics.median(times),
            "min_ms": min(times),
            "max_ms": max(times),
            "first_view_ms": first[name],
            "content_sha256": content[name],
        }
    floor = summary["floor"]["median_ms"]
    print(f"\n{'page':<18}{'first view':>12}{'median':>10}  {'[min, max]':<18}{'x floor':>8}  target (ms)")
    for name, figures in summary.items():
        figures["ratio_to_floor"] = round(figures["median_ms"] / floor, 2)
        target = TARGETS_MS.get(name)
        verdict = "" if target is None else f"<= {target}: {'met' if figures['median_ms'] <= target else 'MISSED'}"
        spread = f"[{figures['min_ms']:.1f}, {figures['max_ms']:.1f}]"
        cells = f"{figures['first_view_ms']:>12.1f}{figures['median_ms']:>10.1f}  {spread:<18}"
        print(f"{PAGES[name]:<18}{cells}{figures['ratio_to_floor']:>8.2f}  {verdict}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "code": args.code or commit(),
                "machine": machine() | {"loadavg_before": load_before},
                "method": "Flask test client in one process, signed in as an engineer; a first view of each "
                "page, then the pages interleaved --repeats times; ms per request",
                "home": manifest,
                "targets_ms": TARGETS_MS,
                "summary": summary,
                "requests": rows,
            },
            indent=1,
        )
    )
    print(f"\nraw timings: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
