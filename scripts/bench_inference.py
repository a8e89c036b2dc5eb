"""Inference and memory benchmarks at 224 px on the real radiographs, each against a naive baseline.

    .venv/bin/python scripts/bench_inference.py [--model models/medal-cxr-v1] [--images 500]

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
    from learning.data import load_grayscale, to_tensor
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


def bench_upload(net, paths: list[str], repeats: int) -> dict:
    from pytorch_grad_cam import GradCAM

    from learning.data import decode_image, to_tensor
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
    from learning.data import LabeledImage, XrayDataset, load_grayscale, to_tensor

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

    from learning.data import LabeledImage, XrayDataModule
    from learning.model import ModelSpec, XrayClassifier

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
