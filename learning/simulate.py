"""Offline active learning with an oracle doctor: query, label, fine-tune, evaluate, repeat."""
from __future__ import annotations

import csv
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from learning.data import LabeledImage
from learning.metrics import evaluate
from learning.model import ModelSpec, XrayNet
from learning.predict import score_pool
from learning.strategies import select
from learning.train import TrainSpec, fine_tune


@dataclass
class SimulationSpec:
    data: Path
    class_names: list[str]
    strategies: list[str] = field(default_factory=lambda: ["random", "least_confidence"])
    seeds: list[int] = field(default_factory=lambda: [0])
    rounds: int = 5
    batch: int = 50          # labels the oracle doctor gives per round
    seed_size: int = 50      # labels before the first query
    pool_size: int | None = None   # cap the unlabeled pool (a stratified sample of train)
    epochs: int = 3
    backbone: str = "efficientnet_lite0"
    size: int = 64
    random_share: float = 0.0
    mc_passes: int = 8
    batch_size: int = 64
    learning_rate: float = 1e-3


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


def load_splits(data: Path, directory: Path, pool_size: int | None, seed: int = 0) -> dict[str, Split]:
    with np.load(data) as arrays:
        parts = {part: (arrays[f"{part}_images"], arrays[f"{part}_labels"].reshape(-1))
                 for part in ("train", "val", "test")}
    images, labels = parts["train"]
    if pool_size is not None and pool_size < len(labels):
        # stratified: keep the class mix of the full split
        rng = np.random.default_rng(seed)
        keep = np.concatenate([rng.choice(np.where(labels == c)[0],
                                          int(round(pool_size * np.mean(labels == c))), replace=False)
                               for c in np.unique(labels)])
        images, labels = images[np.sort(keep)], labels[np.sort(keep)]
    return {"train": _write_split(directory, images, labels, "train"),
            **{part: _write_split(directory, *parts[part], part) for part in ("val", "test")}}


def _evaluate(net: XrayNet, split: Split, names: list[str]) -> dict:
    probabilities = score_pool(net, [item.path for item in split.items]).probabilities
    report = evaluate(split.labels, probabilities, names)
    return {"test_auc": report.macro_auc, "test_accuracy": report.accuracy, "test_ece": report.ece}


def _train(spec: SimulationSpec, items: list[LabeledImage], val: Split, init: XrayNet | None,
           epochs: int, seed: int) -> XrayNet:
    model = ModelSpec(spec.backbone, spec.class_names, spec.size)
    return fine_tune(TrainSpec(model=model, train=items, val=val.items, init_from=init,
                               max_epochs=epochs, batch_size=spec.batch_size,
                               learning_rate=spec.learning_rate, seed=seed, patience=epochs)).net


def reference(spec: SimulationSpec, splits: dict[str, Split], epochs: int, seed: int = 0) -> dict:
    """Every training label at once: the ceiling the learning curves are measured against."""
    started = time.monotonic()
    net = _train(spec, splits["train"].items, splits["val"], None, epochs, seed)
    return {"labels": len(splits["train"].items), "seconds": round(time.monotonic() - started, 1),
            **_evaluate(net, splits["test"], spec.class_names)}


def run_curve(spec: SimulationSpec, splits: dict[str, Split], strategy: str, seed: int,
              report: Callable[[dict], None]) -> list[dict]:
    pool = splits["train"]
    rng = np.random.default_rng(seed)
    # a stratified seed set, as a hospital would start from a few of each class
    labeled = list(np.concatenate([rng.choice(np.where(pool.labels == c)[0],
                                              max(1, spec.seed_size // len(spec.class_names)), replace=False)
                                   for c in np.unique(pool.labels)]))
    rows, net = [], None
    for round_index in range(spec.rounds + 1):
        started = time.monotonic()
        items = [pool.items[i] for i in labeled]
        net = _train(spec, items, splits["val"], net, spec.epochs, seed)
        row = {"strategy": strategy, "seed": seed, "round": round_index, "n_labels": len(labeled),
               **_evaluate(net, splits["test"], spec.class_names)}
        if round_index < spec.rounds:
            unlabeled = np.setdiff1d(np.arange(len(pool.items)), labeled)
            scores = score_pool(net, [pool.items[i].path for i in unlabeled],
                                mc_passes=spec.mc_passes if strategy == "mc_dropout" else 0, seed=seed)
            picked, _ = select(strategy, scores, spec.batch, random_share=spec.random_share, seed=seed)
            labeled.extend(unlabeled[picked].tolist())   # the oracle doctor answers with the true label
        row["seconds"] = round(time.monotonic() - started, 1)
        rows.append(row)
        report(row)
    return rows


def simulate(spec: SimulationSpec, out: Path, report: Callable[[dict], None] = print,
             reference_epochs: int | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        splits = load_splits(spec.data, Path(tmp), spec.pool_size)
        ceiling = reference(spec, splits, reference_epochs) if reference_epochs else None
        if ceiling:
            report({"reference": ceiling})
        rows = []
        for strategy in spec.strategies:
            for seed in spec.seeds:
                rows.extend(run_curve(spec, splits, strategy, seed, report))
    write_csv(rows, out / "learning_curves.csv")
    plot(rows, out / "learning_curves.png", ceiling)
    return {"rows": rows, "reference": ceiling, "spec": {k: str(v) for k, v in asdict(spec).items()},
            "pool": len(splits["train"].items)}


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
    return [(np.mean([r["n_labels"] for r in group]), float(np.mean([r[metric] for r in group])),
             float(np.std([r[metric] for r in group]))) for _, group in sorted(by_round.items())]


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
            ax.axhline(ceiling[metric], color="black", linestyle="--", linewidth=1,
                       label=f"all {ceiling['labels']} labels")
        ax.set_xlabel("labels")
        ax.set_title(f"{title} (mean ± sd over seeds)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
