"""Benchmark: learning curves of every query strategy against random on PneumoniaMNIST.

Trains a full-data reference (every train label), runs the offline active-learning loop for
each strategy and seed on a stratified pool, and reports the labels each strategy needs to
reach 99 % of the reference's test AUC. Sized to finish in about half an hour on a 2-core CPU.
Writes docs/benchmarks/{learning_curves.csv,learning_curves.png,results.json,progress.log}.
Usage: python scripts/bench_strategies.py [--quick] [--jobs 2] [--threads 1]
       python scripts/bench_strategies.py --summarize docs/benchmarks/progress.log
         (tables and plot from the rows logged so far, for a run still going or cut short)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from learning.simulate import (  # noqa: E402
    SimulationSpec,
    _mean_curve,
    labels_to_reach,
    plot,
    simulate,
)

STRATEGIES = ["random", "least_confidence", "margin", "entropy", "mc_dropout", "batch_diverse"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one seed, two strategies, small pool")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument("--jobs", type=int, default=2, help="processes (one curve each at a time)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--reference-epochs", type=int, default=4)
    parser.add_argument("--summarize", type=Path, default=None, help="a progress.log to summarise")
    parser.add_argument("--pool", type=int, default=1000, help="pool size, for --summarize")
    args = parser.parse_args()
    if args.summarize:
        print(summarize(args.summarize, args.pool))
        return 0
    spec = SimulationSpec(
        data=ROOT / "data/pneumoniamnist/pneumoniamnist_varun19424.npz",
        class_names=["normal", "pneumonia"],
        strategies=STRATEGIES,
        seeds=[0, 1, 2],
        rounds=5,
        batch=70,
        seed_size=20,
        pool_size=1000,
        val_size=150,
        epochs=2,
        size=64,
        threads=args.threads,
    )
    reference_epochs = args.reference_epochs
    if args.quick:
        spec.strategies, spec.seeds, spec.rounds, spec.pool_size = ["random", "least_confidence"], [0], 1, 200
        reference_epochs = 1
    args.out.mkdir(parents=True, exist_ok=True)
    progress = args.out / "progress.log"
    progress.write_text("")
    started = time.monotonic()
    result = simulate(
        spec, args.out, report=lambda row: None, reference_epochs=reference_epochs, jobs=args.jobs, progress=progress
    )
    ceiling, rows, pool = result["reference"], result["rows"], result["pool"]
    target = 0.99 * ceiling["test_auc"]
    needed = {s: labels_to_reach(rows, s, target) for s in spec.strategies}
    final = {
        s: max((r for r in rows if r["strategy"] == s), key=lambda r: r["round"])["round"] for s in spec.strategies
    }
    last = {
        s: {
            metric: round(
                sum(r[metric] for r in rows if r["strategy"] == s and r["round"] == final[s]) / len(spec.seeds), 4
            )
            for metric in ("test_auc", "test_accuracy")
        }
        for s in spec.strategies
    }
    results = {
        "reference": ceiling,
        "reference_epochs": reference_epochs,
        "target_auc": target,
        "pool": pool,
        "max_labels": spec.seed_size + spec.rounds * spec.batch,
        "labels_to_99pct": needed,
        "share_of_pool": {s: (n / pool if n else None) for s, n in needed.items()},
        "final_round_mean": last,
        "minutes": round((time.monotonic() - started) / 60, 1),
        "spec": {
            "rounds": spec.rounds,
            "batch": spec.batch,
            "seed_size": spec.seed_size,
            "pool_size": spec.pool_size,
            "val_size": spec.val_size,
            "epochs_per_round": spec.epochs,
            "size": spec.size,
            "backbone": spec.backbone,
            "seeds": spec.seeds,
            "jobs": args.jobs,
            "threads": args.threads,
        },
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


def summarize(progress: Path, pool: int) -> str:
    """Markdown tables from a progress log: labels to 99 % of the reference AUC, then the curves."""
    logged = [json.loads(line) for line in progress.read_text().splitlines() if line.strip()]
    ceiling = next((row["reference"] for row in logged if "reference" in row), None)
    rows = [row for row in logged if "strategy" in row]
    strategies = list(dict.fromkeys(row["strategy"] for row in rows))
    target = 0.99 * ceiling["test_auc"] if ceiling else None
    lines = []
    if ceiling:
        lines += [
            f"reference: {ceiling['labels']} labels, test AUC {ceiling['test_auc']:.4f}, "
            f"accuracy {ceiling['test_accuracy']:.4f}, {ceiling['seconds']:.0f} s; "
            f"99 % target AUC {target:.4f}",
            "",
        ]
    lines += [
        "| strategy | seeds | labels to 99 % of full-data AUC | share of pool | best mean test AUC (labels) "
        "| mean test accuracy there |",
        "|---|---|---|---|---|---|",
    ]
    for strategy in strategies:
        seeds = sorted({row["seed"] for row in rows if row["strategy"] == strategy})
        needed = labels_to_reach(rows, strategy, target) if target else None
        auc = _mean_curve(rows, strategy, "test_auc")
        acc = _mean_curve(rows, strategy, "test_accuracy")
        best = max(range(len(auc)), key=lambda i: auc[i][1])
        lines.append(
            f"| {strategy} | {len(seeds)} | {needed if needed else 'not reached'} | "
            f"{f'{needed / pool:.0%}' if needed else '—'} | {auc[best][1]:.3f} ({auc[best][0]:.0f}) | "
            f"{acc[best][1]:.3f} |"
        )
    lines += ["", "| labels | " + " | ".join(strategies) + " |", "|---" * (len(strategies) + 1) + "|"]
    curves = {s: {round(n): (m, sd) for n, m, sd in _mean_curve(rows, s, "test_auc")} for s in strategies}
    for n in sorted({n for c in curves.values() for n in c}):
        cells = [f"{curves[s][n][0]:.3f} ± {curves[s][n][1]:.3f}" if n in curves[s] else "" for s in strategies]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    plot(rows, progress.with_name("learning_curves.png"), ceiling)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
