"""How long should a round train? (issue 22, items 1 and 5)

Rounds trained as the worker trains them (`webapp.training.recipe.round_spec`, stored trunk
activations, 224 px) on a random draw of labels from `bench_strategy_curves.py`'s site B pool, the
same draw for every variant of a seed, scored on site B's held-out films by their raw calls (argmax,
before any operating point), in the two settings of `bench_operating_points.py` (its `round_inputs`):
  new-class-site:  v1 with its viral row cut, grown back to three classes; viral arrives with site
                   B's films (200 labels); the replay holds no viral film.
  new-site:        v1 as shipped; site B's films of all three classes (120 labels).
The variants change one of config.yaml's `training.round` settings:
  8-epochs:   max_epochs 8 (the round until 6 December)
  12-epochs:  max_epochs 12
  16-epochs:  max_epochs 16 (config.yaml since)
  batch-16:   max_epochs 8 at batch 16: twice the steps, the same films seen
  lr-1e-3:    max_epochs 8 at learning rate 1e-3
The mean of the second half's epochs is kept in each (`keep: average`).

Run: .venv/bin/python scripts/bench_round_epochs.py [--variants 8-epochs 16-epochs] [--seeds 0 1 2]
     [--work /tmp/medal-strategy-curves] [--out docs/benchmarks/round-epochs.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_operating_points as points  # noqa: E402
import bench_strategy_curves as curves  # noqa: E402

from learning.model import adapt_head, load_model  # noqa: E402
from learning.rounds import fine_tune_round  # noqa: E402
from webapp.training import recipe  # noqa: E402

VARIANTS = {
    "8-epochs": {"max_epochs": 8},
    "12-epochs": {"max_epochs": 12},
    "16-epochs": {"max_epochs": 16},
    "batch-16": {"max_epochs": 8, "batch_size": 16},
    "lr-1e-3": {"max_epochs": 8, "learning_rate": 0.001},
}
LABELS = {"new-class-site": 200, "new-site": 120}


def figures(probabilities: np.ndarray, truth: np.ndarray) -> dict:
    called = probabilities.argmax(1)
    recall = [float(np.mean(called[truth == i] == i)) for i in range(3)]
    pneumonia = truth > 0
    return {
        "accuracy": float(np.mean(called == truth)),
        "balanced_accuracy": float(np.mean(recall)),
        "recall": recall,
        "bacterial_vs_viral_auc": float(
            roc_auc_score(
                truth[pneumonia] == 2,
                probabilities[pneumonia, 2] / (probabilities[pneumonia, 1] + probabilities[pneumonia, 2]),
            )
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--settings", nargs="+", default=list(LABELS), choices=list(LABELS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--labels", type=int, help="labels per round instead of the setting's (200 and 120)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/medal-strategy-curves"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks/round-epochs.jsonl")
    args = parser.parse_args()
    v1 = load_model(ROOT / "models/medal-cxr-v1")
    without_viral = adapt_head(v1, curves.CLASSES[:2])
    films = curves.site_b(args.work)
    rows = []
    for setting in args.settings:
        for seed in args.seeds:
            pool, held_out = curves.divide(films, seed)
            truth = np.array([film.class_index for film in held_out])
            size = args.labels or LABELS[setting]
            for variant in args.variants:
                settings = curves.settings_for(args.work, seed, None).with_changes(
                    {"training": {"round": VARIANTS[variant]}}
                )
                labeled, replayed, start, teacher = points.round_inputs(
                    setting, seed, size, pool, settings, v1, without_viral
                )
                started = time.monotonic()
                result = fine_tune_round(recipe.round_spec(settings, start, teacher, labeled, replayed, {}))
                row = {
                    "setting": setting,
                    "variant": variant,
                    "seed": seed,
                    "labels": size,
                    "seconds": round(time.monotonic() - started),
                    **figures(curves.scores(result.net, held_out, settings, 0).probabilities, truth),
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
    args.out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(
        "| setting | variant | rounds | held-out accuracy, mean | balanced accuracy | viral recall "
        "| bacterial vs viral AUC |"
    )
    print("|---|---|---|---|---|---|---|")
    for setting in args.settings:
        for variant in args.variants:
            these = [row for row in rows if row["setting"] == setting and row["variant"] == variant]
            print(
                f"| {setting} | {variant} | {len(these)} | {np.mean([r['accuracy'] for r in these]):.3f} "
                f"| {np.mean([r['balanced_accuracy'] for r in these]):.3f} "
                f"| {np.mean([r['recall'][2] for r in these]):.3f} "
                f"| {np.mean([r['bacterial_vs_viral_auc'] for r in these]):.3f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
