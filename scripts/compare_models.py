"""Two saved models on the same unseen test patients, paired: the difference of each figure with a
95 % interval from resampling patients (one resample index for both models).

    .venv/bin/python scripts/compare_models.py OLD_DIR NEW_DIR [--out docs/benchmarks/compare.json]

The test patients are those of models/kermany-split.csv (part `test`); the figures are those of
scripts/train_first_model.py (pneumonia-vs-normal AUC, bacterial-vs-viral AUC, 3-class accuracy).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from train_first_model import figures  # noqa: E402

from learning.model import load_model  # noqa: E402
from learning.predict import score_pool  # noqa: E402

FIGURES = ("pneumonia_auc", "bacterial_viral_auc", "accuracy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    data = ROOT / "data" / "kermany_cxr_train"
    labels_of = {row["filename"]: row["label"] for row in csv.DictReader(open(data / "labels.csv"))}
    test = [row for row in csv.DictReader(open(ROOT / "models" / "kermany-split.csv")) if row["part"] == "test"]
    old, new = load_model(args.old), load_model(args.new)
    names = old.spec.class_names
    paths = [str(data / row["filename"]) for row in test]
    labels = np.array([names.index(labels_of[row["filename"]]) for row in test])
    p_old = score_pool(old, paths, batch_size=64).probabilities
    p_new = score_pool(new, paths, batch_size=64).probabilities
    groups: dict[str, list[int]] = {}
    for index, row in enumerate(test):
        groups.setdefault(row["patient_id"], []).append(index)
    members = [np.array(indices) for indices in groups.values()]
    rng = np.random.default_rng(0)
    a, b = figures(labels, p_new, names), figures(labels, p_old, names)
    samples: dict[str, list[float]] = {key: [] for key in FIGURES}
    for _ in range(args.resamples):
        chosen = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
        x, y = figures(labels[chosen], p_new[chosen], names), figures(labels[chosen], p_old[chosen], names)
        for key in FIGURES:
            samples[key].append(x[key] - y[key])
    out = {
        "old": str(args.old),
        "new": str(args.new),
        "test_images": len(test),
        "test_patients": len(members),
        "resamples": args.resamples,
        "figures": {
            key: {
                "old": round(b[key], 4),
                "new": round(a[key], 4),
                "difference": round(a[key] - b[key], 4),
                "ci95": [round(float(v), 4) for v in np.percentile(samples[key], [2.5, 97.5])],
            }
            for key in FIGURES
        },
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
