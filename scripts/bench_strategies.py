"""Benchmark: learning curves of every query strategy against random on PneumoniaMNIST.

Trains a full-data reference (every train label), then runs the offline active-learning loop
for each strategy and seed, and reports the labels each needs to reach 99 % of the reference's
test AUC. Writes docs/benchmark/{learning_curves.csv,learning_curves.png,results.json}.
Usage: .venv/bin/python scripts/bench_strategies.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from learning.simulate import (SimulationSpec, labels_to_reach, load_splits, plot, reference, run_curve,
                               write_csv)

ROOT = Path(__file__).resolve().parent.parent
STRATEGIES = ["random", "least_confidence", "margin", "entropy", "mc_dropout", "batch_diverse"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one seed, two strategies, small pool")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmark")
    args = parser.parse_args()
    torch.set_num_threads(2)
    spec = SimulationSpec(data=ROOT / "data/pneumoniamnist/pneumoniamnist_varun19424.npz",
                          class_names=["normal", "pneumonia"], strategies=STRATEGIES, seeds=[0, 1, 2],
                          rounds=7, batch=45, seed_size=40, pool_size=2000, epochs=3, size=64)
    reference_epochs = 8
    if args.quick:
        spec.strategies, spec.seeds, spec.rounds, spec.pool_size = ["random", "least_confidence"], [0], 2, 300
        reference_epochs = 1
    args.out.mkdir(parents=True, exist_ok=True)
    log = (args.out / "progress.log").open("a")

    def report(row: dict) -> None:
        print(json.dumps(row), file=log, flush=True)

    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        full = load_splits(spec.data, Path(tmp) / "full", None)
        ceiling = reference(spec, full, reference_epochs)
        report({"reference": ceiling})
        splits = load_splits(spec.data, Path(tmp) / "pool", spec.pool_size)
        rows = []
        for strategy in spec.strategies:
            for seed in spec.seeds:
                rows.extend(run_curve(spec, splits, strategy, seed, report))
                write_csv(rows, args.out / "learning_curves.csv")
    plot(rows, args.out / "learning_curves.png", ceiling)
    target = 0.99 * ceiling["test_auc"]
    pool = len(splits["train"].items)
    needed = {s: labels_to_reach(rows, s, target) for s in spec.strategies}
    results = {"reference": ceiling, "reference_epochs": reference_epochs, "target_auc": target,
               "pool": pool, "labels_to_99pct": needed,
               "share_of_pool": {s: (n / pool if n else None) for s, n in needed.items()},
               "minutes": round((time.monotonic() - started) / 60, 1),
               "spec": {"rounds": spec.rounds, "batch": spec.batch, "seed_size": spec.seed_size,
                        "epochs_per_round": spec.epochs, "size": spec.size, "backbone": spec.backbone,
                        "seeds": spec.seeds}}
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
