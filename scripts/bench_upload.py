"""Cost of one large upload, and upload latency with review while the model trains.

    .venv/bin/python scripts/bench_upload.py [--side 6000] [--image-size 224]
    .venv/bin/python scripts/bench_upload.py --films 30 [--train-seconds 240]   # docs/benchmarks.md

Without --films: a temporary MEDAL_HOME with a small untrained CNN as champion, the wall time of
POST /api/v1/images for a 36-megapixel PNG and how far the process's peak memory rose (VmHWM).

With --films: the shipped network (models/medal-cxr-v1, served by ONNX Runtime as registered)
in a temporary MEDAL_HOME, in one run: upload -> prediction over unseen test-patient films, each
beside one batch-1 forward pass of the same engine (interleaved, so the ratio survives a noisy
machine), and how long after the upload began its heat map was ready; then label saves and the
review page while `medal train` fine-tunes and `medal drift measure` runs in their own processes
(as the worker runs them: nice and threads from config). Raw rows go to
docs/benchmarks/upload_latency.json beside the summary.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(field)


def big_png(side: int) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side, 0:side]
    pixels = (60 + 90 * np.sin(x / side * 3.1) * np.cos(y / side * 3.1) + 8 * rng.standard_normal((side, side))).clip(
        0, 255
    )
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), mode="L").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=6000)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--films", type=int, default=0, help="upload latency over this many unseen films")
    parser.add_argument("--train-seconds", type=float, default=240, help="label saves while training, at most")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks/upload_latency.json", help="with --films")
    args = parser.parse_args()
    if args.films:
        latency(args.films, args.train_seconds, args.out)
        return
    home = Path(tempfile.mkdtemp(prefix="medal-bench-upload-"))
    os.environ.update(
        {
            "MEDAL_HOME": str(home),
            "MEDAL_CLASSES": "[normal, pneumonia]",
            "MEDAL_MODEL__BACKBONE": "small_cnn",
            "MEDAL_IMAGES__SIZE": str(args.image_size),
            "MEDAL_GATE__MIN_SENSITIVITY": "{normal: 0.80, pneumonia: 0.85}",
        }
    )
    import torch
    from flask_migrate import upgrade

    from learning.model import ModelSpec, XrayNet
    from registry.client import RunRecord
    from webapp import create_app
    from webapp.auth.tokens import create_token
    from webapp.extensions import db
    from webapp.models import User

    data = big_png(args.side)
    app = create_app({"TESTING": True})
    with app.app_context():
        upgrade()
        user = User(username="doctor", role="doctor")
        user.set_password("bench-password")
        db.session.add(user)
        db.session.commit()
        registry = app.extensions["medal"].registry
        torch.manual_seed(0)
        net = XrayNet(ModelSpec("small_cnn", ["normal", "pneumonia"], args.image_size), pretrained=False).eval()
        registry.set_alias("champion", registry.register(registry.log_run(net, RunRecord(params={}), run_name="b")))
        headers = {"Authorization": f"Bearer {create_token(user)}"}
        client = app.test_client()
        # warm up: the model load and Grad-CAM's first use are not the upload's cost
        small = big_png(300)
        client.post("/api/v1/images", headers=headers, data={"file": (io.BytesIO(small), "w.png")})
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM: the PNG's making is not counted
        before = rss_mb("VmRSS")
        started = time.perf_counter()
        response = client.post("/api/v1/images", headers=headers, data={"file": (io.BytesIO(data), "big.png")})
        seconds = time.perf_counter() - started
        peak = rss_mb("VmHWM")
    report = {
        "pixels": args.side * args.side,
        "png_mb": round(len(data) / 1e6, 1),
        "status": response.status_code,
        "seconds": round(seconds, 2),
        "rss_before_mb": round(before),
        "peak_rise_mb": round(peak - before),
    }
    print(json.dumps(report))


def _quantiles(values: list[float]) -> dict:
    import numpy as np

    if not values:
        return {"n": 0}
    a = np.asarray(values)
    return {
        "n": len(values),
        "p50": round(float(np.percentile(a, 50)), 1),
        "p95": round(float(np.percentile(a, 95)), 1),
        "p99": round(float(np.percentile(a, 99)), 1),
        "max": round(float(a.max()), 1),
    }


def _films(n_test: int, n_train: int, n_pool: int) -> tuple[list[Path], list[tuple[Path, str]], list[Path]]:
    """Test-patient films to upload, training films (with their class) to fine-tune on, and pool films."""
    import csv
    import random

    data = ROOT / "data/kermany_cxr_train"
    rows = list(csv.DictReader((ROOT / "models/kermany-split.csv").open()))
    random.Random(0).shuffle(rows)
    test = [data / r["filename"] for r in rows if r["part"] == "test"]
    train = [(data / r["filename"], r["filename"].split("/")[0]) for r in rows if r["part"] == "train"]
    return test[:n_test], train[:n_train], test[n_test : n_test + n_pool]


PACE_SECONDS = 0.5


def _training_running(db, TrainingRun) -> bool:
    running = db.session.execute(db.select(db.func.count()).where(TrainingRun.status == "running")).scalar_one()
    db.session.commit()
    return running > 0


def latency(n_films: int, train_seconds: float, report_path: Path) -> None:
    import re
    import subprocess

    home = Path(tempfile.mkdtemp(prefix="medal-bench-latency-"))
    # the shipped network's classes and size; the fine-tune kept short (one epoch, frozen backbone off)
    os.environ.update(
        {
            "MEDAL_HOME": str(home),
            "MEDAL_TRAINING__MAX_EPOCHS": "1",
            "MEDAL_TRAINING__FREEZE_BACKBONE_EPOCHS": "0",
            "MEDAL_GATE__MIN_GOLD_SIZE": "1",
        }
    )
    from flask_migrate import upgrade

    from learning.data import to_tensor
    from learning.decoding import load_grayscale
    from learning.model import load_model
    from registry.client import RunRecord
    from webapp import create_app
    from webapp.extensions import db
    from webapp.inference import explanations, scoring
    from webapp.inference import threads as process_threads
    from webapp.models import TrainingRun, User
    from webapp.upload.ingest import ingest

    load_before = os.getloadavg()
    test, train, pool = _films(n_films + 1, 120, 300)
    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False})
    with app.app_context():
        settings = app.extensions["medal"].settings
        process_threads.apply(settings, "web")  # as `medal web` runs
        upgrade()
        user = User(username="doctor", role="doctor")
        user.set_password("bench-password")
        db.session.add(user)
        db.session.commit()
        registry = app.extensions["medal"].registry
        net = load_model(ROOT / "models/medal-cxr-v1")
        registry.set_alias("champion", registry.register(registry.log_run(net, RunRecord(params={}), run_name="s")))
        for path, label in train:
            ingest(path.read_bytes(), origin="import", split="train", reference_label=label)
        for path in pool:
            ingest(path.read_bytes(), origin="import", split="pool")
        db.session.commit()
        scoring.score()
        client = app.test_client()
        client.post("/login", data={"username": "doctor", "password": "bench-password"})
        served = app.extensions["medal"].server.current()
        engine = served.engine

        def forward_ms(pixels) -> float:
            x = to_tensor(pixels, engine.spec.image_size).numpy()[None]
            started = time.perf_counter()
            engine.run(x)
            return (time.perf_counter() - started) * 1000

        def upload(path: Path) -> tuple[float, float, dict]:
            started = time.perf_counter()
            response = client.post("/upload", data={"file": (io.BytesIO(path.read_bytes()), path.name)})
            answered = time.perf_counter()
            result = response.get_json()["results"][0]
            assert result["ok"], result
            with client.get(result["heatmap"]["url"]) as heat:  # waits for the background computation
                assert heat.status_code == 200
            ready = time.perf_counter()
            return (answered - started) * 1000, (ready - started) * 1000, result

        upload(test[0])  # warm-up: the first Grad-CAM copies the network
        explanations.drain()
        rows = []
        for path in test[1:]:
            pixels = load_grayscale(path)
            upload_ms, heat_ms, result = upload(path)
            explanations.drain()
            rows.append(
                {
                    "film": path.name,
                    "side": int(max(pixels.shape)),
                    "upload_ms": round(upload_ms, 1),
                    "forward_ms": round(forward_ms(pixels), 1),  # the same engine, batch 1, right after
                    "heatmap_ready_ms": round(heat_ms, 1),
                    "heatmap_status_in_answer": result["heatmap"]["status"],
                }
            )
        ratios = [r["upload_ms"] / r["forward_ms"] for r in rows]

        # --- review while the model trains and drift is measured, each in its own process -------
        db.session.commit()
        env = dict(os.environ)
        medal = [sys.executable, "-c", "import sys; from webapp.cli import main; sys.exit(main())"]
        log = home / "background.log"
        with open(log, "wb") as out:
            trainer = subprocess.Popen(medal + ["train"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            drifter = subprocess.Popen(
                medal + ["drift", "measure"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        saves, pages = [], []  # (ms, a fine-tune was running, the drift pass was running)
        started = time.perf_counter()
        while trainer.poll() is None and time.perf_counter() - started < train_seconds:
            time.sleep(PACE_SECONDS)  # a doctor's rhythm, so the pool lasts the fine-tune
            training = _training_running(db, TrainingRun)
            drifting = drifter.poll() is None
            t0 = time.perf_counter()
            page = client.get("/review").get_data(as_text=True)
            pages.append(((time.perf_counter() - t0) * 1000, training, drifting))
            found = re.search(r'action="/review/(\d+)"', page)
            if found is None:
                break  # the pool is labeled
            prediction = re.search(r'name="prediction_id" value="(\d+)"', page)
            label = re.search(r'name="label" value="([^"]+)"', page).group(1)
            t0 = time.perf_counter()
            response = client.post(
                f"/review/{found.group(1)}",
                data={"label": label, "prediction_id": prediction.group(1) if prediction else ""},
            )
            saves.append(((time.perf_counter() - t0) * 1000, training, drifting))
            assert response.status_code == 302, response.status_code
        training_finished = trainer.poll() is not None
        for process in (trainer, drifter):
            if process.poll() is None:
                process.terminate()
            process.wait(60)
    report = {
        "cpus": os.cpu_count(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "engine": engine.kind,
        "upload_ms": _quantiles([r["upload_ms"] for r in rows]),
        "forward_ms": _quantiles([r["forward_ms"] for r in rows]),
        "upload_over_forward": _quantiles(ratios),
        "heatmap_ready_ms": _quantiles([r["heatmap_ready_ms"] for r in rows]),
        "answers_with_heatmap_pending": sum(r["heatmap_status_in_answer"] == "pending" for r in rows),
        "while_training": {
            # only the samples taken while the fine-tune was running (its run row says so)
            "label_save_ms": _quantiles([ms for ms, training, _ in saves if training]),
            "review_page_ms": _quantiles([ms for ms, training, _ in pages if training]),
            "label_save_ms_with_drift_too": _quantiles(
                [ms for ms, training, drifting in saves if training and drifting]
            ),
            "label_save_ms_any": _quantiles([ms for ms, _, _ in saves]),
            "seconds": round(time.perf_counter() - started, 1),
            "training_finished_first": training_finished,
        },
        "uploads": rows,
        "label_saves": [{"ms": round(ms, 1), "training": t, "drift": d} for ms, t, d in saves],
        "review_pages": [{"ms": round(ms, 1), "training": t, "drift": d} for ms, t, d in pages],
    }
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k not in ("uploads", "label_saves", "review_pages")}))
    print(f"raw rows: {report_path}")


if __name__ == "__main__":
    main()
