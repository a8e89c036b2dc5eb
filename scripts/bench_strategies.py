"""Benchmark: learning curves of every query strategy against random on PneumoniaMNIST.

Trains a full-data reference (every train label), runs the offline active-learning loop for
each strategy and seed on a stratified pool, and reports the labels each strategy needs to
reach 99 % of the reference's test AUC. Sized to finish in about half an hour on a 2-core CPU.
Writes docs/benchmarks/{learning_curves.csv,learning_curves.png,results.json,progress.log}.
Usage: python scripts/bench_strategies.py [--quick] [--jobs 2] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from learning.simulate import SimulationSpec, labels_to_reach, simulate  # noqa: E402

STRATEGIES = ["random", "least_confidence", "margin", "entropy", "mc_dropout", "batch_diverse"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one seed, two strategies, small pool")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument("--jobs", type=int, default=2, help="processes (one curve each at a time)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--reference-epochs", type=int, default=4)
    args = parser.parse_args()
    spec = SimulationSpec(data=ROOT / "data/pneumoniamnist/pneumoniamnist_varun19424.npz",
                          class_names=["normal", "pneumonia"], strategies=STRATEGIES, seeds=[0, 1, 2],
                          rounds=5, batch=70, seed_size=20, pool_size=1000, val_size=150, epochs=2,
                          size=64, threads=args.threads)
    reference_epochs = args.reference_epochs
    if args.quick:
        spec.strategies, spec.seeds, spec.rounds, spec.pool_size = ["random", "least_confidence"], [0], 1, 200
        reference_epochs = 1
    args.out.mkdir(parents=True, exist_ok=True)
    progress = args.out / "progress.log"
    progress.write_text("")
    started = time.monotonic()
    result = simulate(spec, args.out, report=lambda row: None, reference_epochs=reference_epochs,
                      jobs=args.jobs, progress=progress)
    ceiling, rows, pool = result["reference"], result["rows"], result["pool"]
    target = 0.99 * ceiling["test_auc"]
    needed = {s: labels_to_reach(rows, s, target) for s in spec.strategies}
    final = {s: max((r for r in rows if r["strategy"] == s), key=lambda r: r["round"])["round"]
             for s in spec.strategies}
    last = {s: {metric: round(sum(r[metric] for r in rows if r["strategy"] == s and r["round"] == final[s])
                              / len(spec.seeds), 4) for metric in ("test_auc", "test_accuracy")}
            for s in spec.strategies}
    results = {"reference": ceiling, "reference_epochs": reference_epochs, "target_auc": target,
               "pool": pool, "max_labels": spec.seed_size + spec.rounds * spec.batch,
               "labels_to_99pct": needed,
               "share_of_pool": {s: (n / pool if n else None) for s, n in needed.items()},
               "final_round_mean": last,
               "minutes": round((time.monotonic() - started) / 60, 1),
               "spec": {"rounds": spec.rounds, "batch": spec.batch, "seed_size": spec.seed_size,
                        "pool_size": spec.pool_size, "val_size": spec.val_size,
                        "epochs_per_round": spec.epochs, "size": spec.size, "backbone": spec.backbone,
                        "seeds": spec.seeds, "jobs": args.jobs, "threads": args.threads}}
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
