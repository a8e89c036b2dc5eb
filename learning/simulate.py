"""Offline active learning with an oracle doctor: query, label, fine-tune, evaluate, repeat."""

from __future__ import annotations

import csv
import json
import multiprocessing
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch
from PIL import Image

from learning.data import LabeledImage
from learning.metrics import evaluate
from learning.model import ModelSpec, XrayNet
from learning.predict import score_pool
from learning.strategies import select
from learning.train import TrainSpec, fine_tune


def other_machine(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A grayscale film as another site's machine would take it: a 12 % crop, lower contrast, a
    gamma curve and sensor noise (the benchmarks' "new site")."""
    h, w = image.shape
    dy, dx = int(0.06 * h), int(0.06 * w)
    cropped = np.asarray(Image.fromarray(image[dy : h - dy, dx : w - dx]).resize((w, h)), dtype=np.float32) / 255
    changed = 0.15 + 0.7 * cropped**1.5 + rng.normal(0, 0.04, cropped.shape)
    return (np.clip(changed, 0, 1) * 255).astype(np.uint8)


@dataclass
class SimulationSpec:
    data: Path
    class_names: list[str]
    strategies: list[str] = field(default_factory=lambda: ["random", "least_confidence"])
    seeds: list[int] = field(default_factory=lambda: [0])
    rounds: int = 5
    batch: int = 50  # labels the oracle doctor gives per round
    seed_size: int = 50  # labels before the first query
    pool_size: int | None = None  # cap the unlabeled pool (a stratified sample of train)
    val_size: int | None = None  # cap the validation split used for early stopping
    epochs: int = 3
    backbone: str = "efficientnet_lite0"
    size: int = 64
    random_share: float = 0.0
    mc_passes: int = 8
    batch_size: int = 32
    learning_rate: float = 1e-3
    min_epoch_samples: int = 256  # small label sets are repeated (each copy augmented afresh) up
    # to this many per epoch: 20 labels would otherwise be one step
    threads: int = 1  # torch threads per process: on a shared CPU one thread per process
    # trains several times faster than two threads fighting for cores


@dataclass(frozen=True)
class Split:
    items: list[LabeledImage]
    labels: np.ndarray


def _write_split(directory: Path, images: np.ndarray, labels: np.ndarray, name: str) -> Split:
    """MedMNIST arrays to PNG files once, so training reads them like stored X-rays."""
    folder = directory / name
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for index, (image, label) in enumerate(zip(images, labels)):
        path = folder / f"{index}.png"
        Image.fromarray(image if image.ndim == 2 else image.mean(axis=2).astype(np.uint8)).save(path)
        items.append(LabeledImage(str(path), int(label)))
    return Split(items, labels.astype(int))


def _stratified(images: np.ndarray, labels: np.ndarray, size: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A sample that keeps the class mix of the full split."""
    if size is None or size >= len(labels):
        return images, labels
    rng = np.random.default_rng(seed)
    keep = np.sort(
        np.concatenate(
            [
                rng.choice(np.where(labels == c)[0], int(round(size * np.mean(labels == c))), replace=False)
                for c in np.unique(labels)
            ]
        )
    )
    return images[keep], labels[keep]


def load_splits(
    data: Path, directory: Path, pool_size: int | None, seed: int = 0, val_size: int | None = None
) -> dict[str, Split]:
    with np.load(data) as arrays:
        parts = {
            part: (arrays[f"{part}_images"], arrays[f"{part}_labels"].reshape(-1)) for part in ("train", "val", "test")
        }
    return {
        "train": _write_split(directory, *_stratified(*parts["train"], pool_size, seed), "train"),
        "val": _write_split(directory, *_stratified(*parts["val"], val_size, seed), "val"),
        "test": _write_split(directory, *parts["test"], "test"),
    }


def _evaluate(net: XrayNet, split: Split, names: list[str]) -> dict:
    probabilities = score_pool(net, [item.path for item in split.items]).probabilities
    report = evaluate(split.labels, probabilities, names)
    return {"test_auc": report.macro_auc, "test_accuracy": report.accuracy, "test_ece": report.ece}


def _train(
    spec: SimulationSpec,
    items: list[LabeledImage],
    val: Split,
    init: XrayNet | None,
    epochs: int,
    seed: int,
    patience: int | None = None,
) -> XrayNet:
    """fine_tune from the previous round's weights (ImageNet for the first); the best
    validation-loss epoch is kept, so validation selects and the test split only reports."""
    model = ModelSpec(spec.backbone, spec.class_names, spec.size)
    return fine_tune(
        TrainSpec(
            model=model,
            train=items,
            val=val.items,
            init_from=init,
            max_epochs=epochs,
            batch_size=spec.batch_size,
            learning_rate=spec.learning_rate,
            seed=seed,
            patience=patience or epochs,
        )
    ).net


def reference(spec: SimulationSpec, splits: dict[str, Split], epochs: int, seed: int = 0) -> dict:
    """Every training label at once: the ceiling the learning curves are measured against.

    Early stopping gets a patience of two epochs here (the curves' short rounds use none)."""
    started = time.monotonic()
    net = _train(spec, splits["train"].items, splits["val"], None, epochs, seed, patience=2)
    return {
        "labels": len(splits["train"].items),
        "seconds": round(time.monotonic() - started, 1),
        **_evaluate(net, splits["test"], spec.class_names),
    }


def run_curve(
    spec: SimulationSpec, splits: dict[str, Split], strategy: str, seed: int, report: Callable[[dict], None]
) -> list[dict]:
    pool = splits["train"]
    rng = np.random.default_rng(seed)
    # a stratified seed set, as a hospital would start from a few of each class
    labeled = list(
        np.concatenate(
            [
                rng.choice(
                    np.where(pool.labels == c)[0], max(1, spec.seed_size // len(spec.class_names)), replace=False
                )
                for c in np.unique(pool.labels)
            ]
        )
    )
    rows, net = [], None
    for round_index in range(spec.rounds + 1):
        started = time.monotonic()
        items = [pool.items[i] for i in labeled]
        items = items * max(1, -(-spec.min_epoch_samples // len(items)))
        net = _train(spec, items, splits["val"], net, spec.epochs, seed)
        row = {
            "strategy": strategy,
            "seed": seed,
            "round": round_index,
            "n_labels": len(labeled),
            **_evaluate(net, splits["test"], spec.class_names),
        }
        if round_index < spec.rounds:
            unlabeled = np.setdiff1d(np.arange(len(pool.items)), labeled)
            scores = score_pool(
                net,
                [pool.items[i].path for i in unlabeled],
                mc_passes=spec.mc_passes if strategy == "mc_dropout" else 0,
                seed=seed,
            )
            picked, _ = select(strategy, scores, spec.batch, random_share=spec.random_share, seed=seed)
            labeled.extend(unlabeled[picked].tolist())  # the oracle doctor answers with the true label
        row["seconds"] = round(time.monotonic() - started, 1)
        rows.append(row)
        report(row)
    return rows


def _log(progress: Path | None, row: dict) -> None:
    if progress is not None:
        with progress.open("a") as handle:  # one short appended line per row: safe across processes
            handle.write(json.dumps(row) + "\n")


def _both(report: Callable[[dict], None], progress: Path | None) -> Callable[[dict], None]:
    """Report a row and append it to the progress log."""

    def both(row: dict) -> None:
        report(row)
        _log(progress, row)

    return both


def _task(
    spec: SimulationSpec, kind: str, strategy: str, seed: int, reference_epochs: int, progress: Path | None
) -> tuple[str, object]:
    """One curve (or the reference) in its own process with its own copy of the splits."""
    torch.set_num_threads(max(1, spec.threads))
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "reference":
            full = load_splits(spec.data, Path(tmp), None, val_size=spec.val_size)
            ceiling = reference(spec, full, reference_epochs)
            _log(progress, {"reference": ceiling})
            return kind, ceiling
        splits = load_splits(spec.data, Path(tmp), spec.pool_size, val_size=spec.val_size)
        return kind, run_curve(spec, splits, strategy, seed, lambda row: _log(progress, row))


def simulate(
    spec: SimulationSpec,
    out: Path,
    report: Callable[[dict], None] = print,
    reference_epochs: int | None = None,
    jobs: int = 1,
    progress: Path | None = None,
) -> dict:
    """Every strategy and seed (and, if asked, the full-data reference on every train label).

    With jobs > 1 the curves run in that many processes, `spec.threads` torch threads each; the
    reference trains on the whole train split, the curves on the (optionally capped) pool.
    """
    out.mkdir(parents=True, exist_ok=True)
    tasks = ([("reference", "", 0)] if reference_epochs else []) + [
        ("curve", strategy, seed) for strategy in spec.strategies for seed in spec.seeds
    ]
    ceiling, rows = None, []
    if jobs <= 1:
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(max(1, spec.threads))
        try:
            with tempfile.TemporaryDirectory() as tmp:
                if reference_epochs:
                    full = load_splits(spec.data, Path(tmp) / "full", None, val_size=spec.val_size)
                    ceiling = reference(spec, full, reference_epochs)
                    report({"reference": ceiling})
                    _log(progress, {"reference": ceiling})
                splits = load_splits(spec.data, Path(tmp) / "pool", spec.pool_size, val_size=spec.val_size)
                for strategy in spec.strategies:
                    for seed in spec.seeds:
                        rows.extend(run_curve(spec, splits, strategy, seed, _both(report, progress)))
                        write_csv(rows, out / "learning_curves.csv")
        finally:
            torch.set_num_threads(torch_threads)
    else:
        # spawn: a forked child would inherit the parent's torch thread pool and locks
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [
                pool.submit(_task, spec, kind, strategy, seed, reference_epochs or 0, progress)
                for kind, strategy, seed in tasks
            ]
            for future in futures:
                kind, value = future.result()
                if kind == "reference":
                    ceiling = cast(dict, value)
                    report({"reference": ceiling})
                else:
                    curve = cast(list, value)
                    rows.extend(curve)
                    for row in curve:
                        report(row)
                    write_csv(rows, out / "learning_curves.csv")
    write_csv(rows, out / "learning_curves.csv")
    plot(rows, out / "learning_curves.png", ceiling)
    return {
        "rows": rows,
        "reference": ceiling,
        "spec": {k: str(v) for k, v in asdict(spec).items()},
        "pool": pool_count(spec),
    }


def pool_count(spec: SimulationSpec) -> int:
    with np.load(spec.data) as arrays:
        labels = arrays["train_labels"].reshape(-1)
    return len(_stratified(labels, labels, spec.pool_size, 0)[1])


def write_csv(rows: list[dict], path: Path) -> None:
    fields = ["strategy", "seed", "round", "n_labels", "test_auc", "test_accuracy", "test_ece", "seconds"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows({key: row.get(key) for key in fields} for row in rows)


def labels_to_reach(rows: list[dict], strategy: str, target_auc: float) -> int | None:
    """Smallest label count at which the mean test AUC over seeds reaches the target."""
    curve = _mean_curve(rows, strategy, "test_auc")
    return next((int(n) for n, mean, _ in curve if mean >= target_auc), None)


def _mean_curve(rows: list[dict], strategy: str, metric: str) -> list[tuple[float, float, float]]:
    by_round: dict[int, list[dict]] = {}
    for row in rows:
        if row["strategy"] == strategy and row.get(metric) is not None:
            by_round.setdefault(row["round"], []).append(row)
    return [
        (
            np.mean([r["n_labels"] for r in group]),
            float(np.mean([r[metric] for r in group])),
            float(np.std([r[metric] for r in group])),
        )
        for _, group in sorted(by_round.items())
    ]


def plot(rows: list[dict], path: Path, ceiling: dict | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.2))
    axes = figure.subplots(1, 2)
    for metric, ax, title in (("test_auc", axes[0], "test AUC"), ("test_accuracy", axes[1], "test accuracy")):
        for strategy in dict.fromkeys(row["strategy"] for row in rows):
            curve = np.array(_mean_curve(rows, strategy, metric))
            if len(curve) == 0:
                continue
            ax.plot(curve[:, 0], curve[:, 1], marker="o", markersize=3, label=strategy)
            ax.fill_between(curve[:, 0], curve[:, 1] - curve[:, 2], curve[:, 1] + curve[:, 2], alpha=0.15)
        if ceiling and ceiling.get(metric) is not None:
            ax.axhline(
                ceiling[metric], color="black", linestyle="--", linewidth=1, label=f"all {ceiling['labels']} labels"
            )
        ax.set_xlabel("labels")
        ax.set_title(f"{title} (mean ± sd over seeds)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
