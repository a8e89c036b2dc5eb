"""Inference and memory benchmarks at 224 px on the real radiographs, each against a naive baseline.

    .venv/bin/python scripts/bench_inference.py [--model models/medal-cxr-v1] [--images 500]
    .venv/bin/python scripts/bench_inference.py --engines-only     # section 0 alone, about 2 minutes

0. CPU inference against its limit, in one process and interleaved repeat by repeat: the shipped
   network exported as registration exports it, raw ONNX Runtime at batch 32 and batch 1, torch
   eager at batch 32, and medal's scoring path (`medal score`: learning.predict.score_pool through
   the engine learning.engine.load_engine picks, decoding real films from disk) as a ratio to raw
   ONNX Runtime. Raw rows: docs/benchmarks/inference_engines.csv; summary: .json beside it.
1. Pool scoring: learning.predict.score_pool (batched) against one image at a time
   (decode, transform, forward, softmax per image), on the same images.
2. Upload -> prediction with heat map: decode the uploaded bytes, learning.explain.explain
   (one Grad-CAM pass gives both the probabilities and the map) and the overlay PNG, p50/p95;
   against the naive two-pass way (a forward for the prediction, then Grad-CAM again).
3. Memory of the training data: XrayDataset (uint8 cache) for 1,000 and 5,000 images against
   float tensors, and the peak RSS of a training process (dataset + model + a few optimizer
   steps at the training batch size) for 1,000 and 5,000 images, each in a fresh process.

Writes a JSON report (--out, default docs/bench_inference.json) and prints it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

DATA = ROOT / "data" / "kermany_cxr_train"


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; getrusage's maxrss survives exec, so a child
    started from a big parent would report the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def image_paths(split_csv: Path, part: str, limit: int) -> list[str]:
    """Images of one part of the shipped split (the test patients), else of the whole folder."""
    if split_csv.exists():
        with open(split_csv, newline="") as handle:
            paths = [str(DATA / row["filename"]) for row in csv.DictReader(handle) if row["part"] == part]
    else:
        with open(DATA / "labels.csv", newline="") as handle:
            paths = [str(DATA / row["filename"]) for row in csv.DictReader(handle)]
    return paths[:limit]


def load_net(model: Path):
    from learning.model import ModelSpec, XrayNet, load_model

    if (model / "weights.pt").exists():
        return load_model(model)
    return XrayNet(ModelSpec("efficientnet_lite0", ["normal", "bacterial_pneumonia", "viral_pneumonia"], 224)).eval()


def bench_scoring(net, paths: list[str], batch_size: int) -> dict:
    from learning.data import to_tensor
    from learning.decoding import load_grayscale
    from learning.predict import score_pool

    score_pool(net, paths[:8], batch_size=8)  # warm-up
    batched_s = naive_s = 0.0
    batched, naive = [], []
    chunk = max(batch_size, 50)
    # interleaved chunks, so a busy shared CPU slows both ways alike and the ratio holds
    for start in range(0, len(paths), chunk):
        part = paths[start : start + chunk]
        started = time.perf_counter()
        batched.append(score_pool(net, part, batch_size=batch_size).probabilities)
        batched_s += time.perf_counter() - started
        started = time.perf_counter()
        with torch.inference_mode():
            for path in part:  # one image at a time
                x = to_tensor(load_grayscale(path), net.spec.image_size).unsqueeze(0)
                naive.append(net(x).softmax(dim=1)[0].numpy())
        naive_s += time.perf_counter() - started
    batched = np.concatenate(batched)
    agree = float(np.max(np.abs(np.stack(naive) - batched)))
    return {
        "images": len(paths),
        "batch_size": batch_size,
        "batched_images_per_s": round(len(paths) / batched_s, 1),
        "naive_images_per_s": round(len(paths) / naive_s, 1),
        "speedup": round(naive_s / batched_s, 2),
        "max_probability_difference": round(agree, 6),
    }


def _timed(measure: str, batch: int, images: int, action) -> dict:
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    return {
        "measure": measure,
        "batch": batch,
        "images": images,
        "seconds": round(seconds, 4),
        "images_per_s": round(images / seconds, 2),
    }


def _spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2), "max": round(max(values), 2)}


def bench_engines(net, paths: list[str], repeats: int, threads: int, score_images: int, mc_passes: int) -> dict:
    """Raw ONNX Runtime (batch 32 and 1) and torch eager on one batch of real films, and the scoring
    path on `score_images` films from disk, each repeat running all four back to back, so a busy
    shared CPU slows them alike and the ratios within a repeat hold."""
    import tempfile

    import onnxruntime

    from learning.data import to_tensor
    from learning.decoding import load_grayscale
    from learning.engine import INPUT, ONNX_DIR, ONNX_FILE, Threads, export_onnx, load_engine, use_threads
    from learning.model import save_model
    from learning.predict import score_pool

    load_at_start = [round(v, 2) for v in os.getloadavg()]
    in_force = use_threads(Threads(threads, 1))  # torch and every ONNX Runtime session below
    size = net.spec.image_size
    batch = np.stack([to_tensor(load_grayscale(path), size).numpy() for path in paths[:32]])
    films = paths[:score_images]
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_model(net, Path(tmp) / "model")
        started = time.perf_counter()
        export_onnx(net, folder / ONNX_DIR / ONNX_FILE)  # as Registry.register does, parity check included
        export_s = time.perf_counter() - started
        engine = load_engine(folder)  # what the model server and `medal score` get
        assert engine.kind == "onnxruntime", engine.kind
        session = engine.session
        feed = {INPUT: batch}
        with torch.inference_mode():
            torch_probabilities = net(torch.from_numpy(batch)).softmax(dim=1).numpy()
        onnx_probabilities = session.run(["probabilities"], feed)[0]
        score_pool(engine, films[:8], mc_passes=mc_passes)  # warm-up
        steps = [
            # raw: the bare session on a batch already in memory, 4 x 32 films
            ("onnxruntime", 32, 4 * len(batch), lambda: [session.run(None, feed) for _ in range(4)]),
            (
                "onnxruntime",
                1,
                len(batch),
                lambda: [session.run(None, {INPUT: batch[i : i + 1]}) for i in range(len(batch))],
            ),
            ("torch eager", 32, len(batch), lambda: net(torch.from_numpy(batch))),
            ("medal score path", 32, len(films), lambda: score_pool(engine, films, mc_passes=mc_passes)),
        ]
        rows = []
        for repeat in range(repeats):
            for measure, batch_size, count, action in steps:
                with torch.inference_mode():
                    rows.append({"repeat": repeat} | _timed(measure, batch_size, count, action))
            print(json.dumps(rows[-4:]), flush=True)

    def speeds(measure: str, batch_size: int) -> list[float]:
        return [row["images_per_s"] for row in rows if row["measure"] == measure and row["batch"] == batch_size]

    raw32, raw1 = speeds("onnxruntime", 32), speeds("onnxruntime", 1)
    eager, scoring = speeds("torch eager", 32), speeds("medal score path", 32)
    return {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        },
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "threads": {"intra_op": in_force.intra_op, "inter_op": in_force.inter_op},
        "repeats": repeats,
        "score_images": len(films),
        "mc_dropout_passes": mc_passes,
        "export_seconds": round(export_s, 1),
        "max_probability_difference_onnx_vs_torch": float(np.max(np.abs(onnx_probabilities - torch_probabilities))),
        "images_per_s": {
            "onnxruntime_batch_32": _spread(raw32),
            "onnxruntime_batch_1": _spread(raw1),
            "torch_eager_batch_32": _spread(eager),
            "medal_score_path": _spread(scoring),
        },
        # paired within each repeat
        "ratios": {
            "medal_score_path_to_onnxruntime_batch_32": _spread([s / r for s, r in zip(scoring, raw32)]),
            "onnxruntime_to_torch_eager_batch_32": _spread([r / e for r, e in zip(raw32, eager)]),
            "onnxruntime_batch_1_to_batch_32": _spread([one / r for one, r in zip(raw1, raw32)]),
        },
        "rows": rows,
    }


def write_engines(result: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "inference_engines.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(result["rows"][0]))
        writer.writeheader()
        writer.writerows(result["rows"])
    summary = {key: value for key, value in result.items() if key != "rows"}
    (out_dir / "inference_engines.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("| measure | images/s median (min-max) |\n|---|---|")
    for name, spread in summary["images_per_s"].items():
        print(f"| {name} | {spread['median']} ({spread['min']}-{spread['max']}) |")
    for name, spread in summary["ratios"].items():
        print(f"| {name} | {spread['median']}x ({spread['min']}-{spread['max']}) |")


def bench_upload(net, paths: list[str], repeats: int) -> dict:
    from pytorch_grad_cam import GradCAM

    from learning.data import to_tensor
    from learning.decoding import decode_image
    from learning.explain import explain, overlay_png

    size = net.spec.image_size
    blobs = [Path(path).read_bytes() for path in paths[:repeats]]
    explain(net, decode_image(blobs[0], 50_000_000), size)  # warm-up (Grad-CAM hooks)
    ours, explain_only, naive = [], [], []
    for data in blobs:
        started = time.perf_counter()
        pixels = decode_image(data, 50_000_000)
        t_explain = time.perf_counter()
        explanation = explain(net, pixels, size)
        explain_only.append(time.perf_counter() - t_explain)
        overlay_png(pixels, explanation.heatmap)
        ours.append(time.perf_counter() - started)

        started = time.perf_counter()  # naive: predict, then explain
        pixels = decode_image(data, 50_000_000)
        x = to_tensor(pixels, size).unsqueeze(0)
        with torch.inference_mode():
            net(x).softmax(dim=1)
        with GradCAM(model=net, target_layers=[net.cam_layer]) as cam:
            cam(input_tensor=x, targets=None)
        overlay_png(pixels, explanation.heatmap)
        naive.append(time.perf_counter() - started)

    def summary(values):
        ms = sorted(v * 1000 for v in values)
        return {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1)}

    return {
        "uploads": len(blobs),
        "decode_explain_overlay": summary(ours),
        "explain_only": summary(explain_only),
        "naive_two_passes": summary(naive),
    }


def _child_dataset(n: int, size: int, as_float: bool) -> dict:
    from learning.data import LabeledImage, XrayDataset, to_tensor
    from learning.decoding import load_grayscale

    paths = image_paths(Path("/nonexistent"), "", n)
    import torch  # noqa: F401  (the worker has it loaded anyway)

    before = peak_rss_mb()
    started = time.perf_counter()
    if as_float:  # the old way: every image a float tensor
        held = [to_tensor(load_grayscale(path), size) for path in paths]
        nbytes = sum(t.numel() * 4 for t in held)
    else:
        held = XrayDataset([LabeledImage(path, 0) for path in paths], size)
        nbytes = held._pixels.nbytes
    return {
        "images": len(paths),
        "held_mb": round(nbytes / 2**20, 1),
        "rss_growth_mb": round(peak_rss_mb() - before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "load_s": round(time.perf_counter() - started, 1),
    }


def _child_training(n: int, size: int, batch_size: int, steps: int) -> dict:
    """Peak RSS of the training process: the dataset of n images, the model, `steps` optimizer
    steps and a validation pass, through the same DataModule and LightningModule as fine_tune."""
    import pytorch_lightning as pl

    from learning.classifier import XrayClassifier
    from learning.data import LabeledImage
    from learning.datamodule import XrayDataModule
    from learning.model import ModelSpec

    with open(DATA / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[:n]
    names = ["normal", "bacterial_pneumonia", "viral_pneumonia"]
    items = [LabeledImage(str(DATA / row["filename"]), names.index(row["label"]), row["patient_id"]) for row in rows]
    module = XrayClassifier(ModelSpec("efficientnet_lite0", names, size))
    data = XrayDataModule(items, items[:64], size, batch_size, balanced=True)
    data.setup()
    loaded = peak_rss_mb()  # libraries, model and the uint8 images
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=steps,
        limit_val_batches=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    started = time.perf_counter()
    trainer.fit(module, datamodule=data)
    return {
        "images": n,
        "batch_size": batch_size,
        "steps": steps,
        "before_training_mb": round(loaded, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "seconds": round(time.perf_counter() - started, 1),
    }


def in_child(kind: str, **kwargs) -> dict:
    code = (
        f"import sys, json; sys.path.insert(0, {str(ROOT)!r}); sys.argv=['x'];"
        f"import scripts.bench_inference as b; print(json.dumps(b._child_{kind}(**{kwargs!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "medal-cxr-v1")
    parser.add_argument("--split-csv", type=Path, default=ROOT / "models" / "kermany-split.csv")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--uploads", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-batch-size", type=int, default=16)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--engines-only", action="store_true", help="only section 0 (ONNX Runtime, torch, medal)")
    parser.add_argument("--repeats", type=int, default=5, help="section 0: repeats of every measure")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="section 0: intra-op threads")
    parser.add_argument("--score-images", type=int, default=128, help="section 0: films per scoring pass")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench_inference.json")
    args = parser.parse_args(argv)

    net = load_net(args.model)
    paths = image_paths(args.split_csv, "test", args.images)
    report = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        },
        "model": str(args.model.relative_to(ROOT)) if args.model.is_relative_to(ROOT) else str(args.model),
        "image_size": net.spec.image_size,
    }
    import yaml

    mc_passes = yaml.safe_load((ROOT / "config.yaml").read_text())["active_learning"]["mc_dropout_passes"]
    report["engines"] = bench_engines(net, paths, args.repeats, args.threads, args.score_images, mc_passes)
    write_engines(report["engines"], ROOT / "docs" / "benchmarks")
    report["engines"].pop("rows")
    report["machine"]["load_average_after_engines"] = [round(v, 2) for v in os.getloadavg()]
    if args.engines_only:
        return report
    report["scoring"] = bench_scoring(net, paths, args.batch_size)
    print(json.dumps({"scoring": report["scoring"]}), flush=True)
    report["upload"] = bench_upload(net, paths, args.uploads)
    print(json.dumps({"upload": report["upload"]}), flush=True)
    if not args.skip_memory:
        size = net.spec.image_size
        report["dataset_memory"] = [
            in_child("dataset", n=n, size=size, as_float=as_float)
            | {"storage": "float32 tensors" if as_float else "uint8 (XrayDataset)"}
            for n in (1000, 5000)
            for as_float in (False, True)
        ]
        print(json.dumps({"dataset_memory": report["dataset_memory"]}), flush=True)
        report["training_memory"] = [
            in_child("training", n=n, size=size, batch_size=args.train_batch_size, steps=4) for n in (1000, 5000)
        ] + [in_child("training", n=5000, size=size, batch_size=8, steps=4)]
        print(json.dumps({"training_memory": report["training_memory"]}), flush=True)
    report["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
