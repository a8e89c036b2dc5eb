"""How much does a round move when only its validation split or its seed changes? (issue 22, item 5)

The same labels (a random draw from `bench_strategy_curves.py`'s site B pool, seed 0) and the same
replay, trained as the worker trains them (`webapp.training.recipe.round_spec`, from v1), with:
  both:       the validation split and the round's seed changed together (seeds 0-4), as between
              two installations, whose patient pseudonyms, and so splits, differ;
  seed-only:  the split of seed 0 and the round's seed 1-4.
Each candidate is scored on site B's held-out films before its operating point and after.

Run: .venv/bin/python scripts/bench_round_spread.py [--labels 500] [--work /tmp/medal-strategy-curves]
     [--out docs/benchmarks/round-spread.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_strategy_curves as curves  # noqa: E402

from learning.model import load_model  # noqa: E402
from learning.rounds import fine_tune_round  # noqa: E402
from learning.train import split_validation  # noqa: E402
from webapp.training import recipe  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=int, default=500)
    parser.add_argument("--work", type=Path, default=Path("/tmp/medal-strategy-curves"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks/round-spread.json")
    args = parser.parse_args()
    v1 = load_model(ROOT / "models/medal-cxr-v1")
    pool, held_out = curves.divide(curves.site_b(args.work), 0)
    settings = curves.settings_for(args.work, 0, None)
    replayed = curves.replay(settings.training.replay_samples, 0)
    labeled = [pool[i] for i in np.random.default_rng(0).choice(len(pool), size=args.labels, replace=False)]
    doctors = set(labeled)
    rows = []
    for mode, split_seed, seed in [("both", s, s) for s in range(5)] + [("seed-only", 0, s) for s in range(1, 5)]:
        train, val = split_validation([*labeled, *replayed], settings.training.val_fraction, split_seed)
        spec = recipe.round_spec(
            settings, v1, v1, [x for x in train if x in doctors], [x for x in train if x not in doctors], {}
        )
        started = time.monotonic()
        result = fine_tune_round(dataclasses.replace(spec, val=val, seed=seed))
        raw = curves.held_out_figures(result.net, held_out, settings)
        point = recipe.operating_point(result, result.val_probabilities, settings)  # writes into result.net
        row = {
            "mode": mode,
            "split_seed": split_seed,
            "seed": seed,
            "train_s": round(time.monotonic() - started, 1),
            "offsets": point.offsets if point else None,
            "raw": raw,
            "with_offsets": curves.held_out_figures(result.net, held_out, settings),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    args.out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    for mode in ("both", "seed-only"):
        picked = [r for r in rows if r["mode"] == mode or (mode == "seed-only" and r["seed"] == 0)]
        accuracy = [r["raw"]["accuracy"] for r in picked]
        auc = [r["raw"]["macro_auc"] for r in picked]
        print(
            f"{mode}: {len(picked)} rounds, held-out accuracy {min(accuracy):.3f}-{max(accuracy):.3f} "
            f"(sd {np.std(accuracy):.3f}), macro AUC {min(auc):.3f}-{max(auc):.3f} (sd {np.std(auc):.3f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
