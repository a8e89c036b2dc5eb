"""Do a round's operating points hold at the new site? (issue 22, item 3)

A round fits its per-class offsets (`learning.operating_point.fit_offsets`) on its own validation
split: 15 % of the doctors' labels and the replay, by patient. At a new site that split holds a few
dozen of the site's films, and a new class's few. This bench asks whether offsets fitted there
move the held-out films of the new site the way they moved the validation films.

Rounds are trained as the worker trains them (`learning.rounds.fine_tune_round` with config.yaml's
round settings, stored trunk activations, 224 px), from v1, on a random draw of labels from the
pool, in two settings (`bench_strategy_curves.py` makes the films and divides them per seed):
  new-site:        v1 as shipped; site B's films of all three classes, taken differently.
  new-class-site:  v1 with its viral row cut (learning.model.adapt_head), grown back to three
                   classes; the replay holds no viral film; viral arrives with site B's films.
For each round the raw (offset-free) probabilities of its validation films and of the held-out
films are kept (`<work>/operating-points/*.npz`), so every rule is judged on the same rounds: no
offsets, the rule in this checkout, and with `--compare-with REV` the rule at another commit.

Run: .venv/bin/python scripts/bench_operating_points.py [--seeds 0 1 2] [--compare-with 5d50ad5]
     [--work /tmp/medal-strategy-curves] [--out docs/benchmarks/operating-points.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_strategy_curves as curves  # noqa: E402

from learning import operating_point  # noqa: E402
from learning.data import LabeledImage  # noqa: E402
from learning.model import XrayNet, adapt_head, load_model  # noqa: E402
from learning.rounds import fine_tune_round  # noqa: E402
from webapp.config import Settings  # noqa: E402
from webapp.training import recipe  # noqa: E402

SETTINGS = {"new-site": (40, 120, 240, 500), "new-class-site": (40, 80, 120, 200)}


def round_inputs(
    setting: str,
    seed: int,
    size: int,
    pool: list[LabeledImage],
    settings: Settings,
    v1: XrayNet,
    without_viral: XrayNet,
) -> tuple[list[LabeledImage], list[LabeledImage], XrayNet, XrayNet]:
    """A setting's round: its labels (the seed's draw of `size` from the pool), its replay, the
    network it starts from and its teacher. new-site: v1 itself; new-class-site: v1 without viral,
    grown back to three classes, and a replay that holds no viral film."""
    labeled = [pool[i] for i in np.random.default_rng(seed * 100 + size).choice(len(pool), size=size, replace=False)]
    replayed = curves.replay(settings.training.replay_samples, seed)
    if setting == "new-site":
        return labeled, replayed, v1, v1
    no_viral = [film for film in replayed if film.class_index != 2]
    return labeled, no_viral, adapt_head(without_viral, curves.CLASSES), without_viral


def rounds(work: Path, seeds: list[int]) -> list[Path]:
    """Train the rounds not stored yet; returns every round's file."""
    v1 = load_model(ROOT / "models/medal-cxr-v1")
    without_viral = adapt_head(v1, curves.CLASSES[:2])
    films = curves.site_b(work)
    folder = work / "operating-points"
    folder.mkdir(parents=True, exist_ok=True)
    done = []
    for setting, sizes in SETTINGS.items():
        for seed in seeds:
            pool, held_out = curves.divide(films, seed)
            settings = curves.settings_for(work, seed, None)
            for size in sizes:
                target = folder / f"{'nc-' if setting == 'new-class-site' else ''}s{seed}-n{size}.npz"
                done.append(target)
                if target.exists():
                    continue
                labeled, replayed, start, teacher = round_inputs(setting, seed, size, pool, settings, v1, without_viral)
                started = time.monotonic()
                result = fine_tune_round(recipe.round_spec(settings, start, teacher, labeled, replayed, {}))
                held = curves.scores(result.net, held_out, settings, 0).probabilities
                np.savez(
                    target,
                    val_p=result.val_probabilities,
                    val_y=np.array([item.class_index for item in result.val_items]),
                    val_site=np.array([item.site for item in result.val_items]),
                    held_p=held,
                    held_y=np.array([film.class_index for film in held_out]),
                )
                print(f"{target.name}: {time.monotonic() - started:.0f} s", flush=True)
    return done


def rule_at(revision: str) -> ModuleType:
    """learning/operating_point.py as it was at `revision`."""
    source = subprocess.run(
        ["git", "show", f"{revision}:learning/operating_point.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "operating_point_then.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("operating_point_then", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def held_out(probabilities: np.ndarray, truth: np.ndarray, offsets: np.ndarray, floors: np.ndarray) -> dict:
    called = (np.log(np.clip(probabilities, 1e-12, None)) + offsets).argmax(1)
    recall = np.array([np.mean(called[truth == i] == i) for i in range(len(floors))])
    return {
        "accuracy": float(np.mean(called == truth)),
        "recall": [float(value) for value in recall],
        "shortfall": float(np.clip(floors - recall, 0, None).sum()),  # summed distance below the floors
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--compare-with", default=None, help="a commit whose rule is judged beside this checkout's")
    parser.add_argument("--work", type=Path, default=Path("/tmp/medal-strategy-curves"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks/operating-points.json")
    args = parser.parse_args()
    files = rounds(args.work, args.seeds)
    floors_by_name = dict(curves.settings_for(args.work, 0, None).gate.min_sensitivity)
    floors = np.array([floors_by_name[name] for name in curves.CLASSES])
    rules: dict[str, ModuleType | None] = {"no offsets": None, "this checkout": operating_point}
    if args.compare_with:
        rules[f"at {args.compare_with}"] = rule_at(args.compare_with)
    rows = []
    for path in files:
        data = np.load(path)
        row: dict = {
            "round": path.stem,
            "val_films": len(data["val_y"]),
            "val_per_class": np.bincount(data["val_y"], minlength=3).tolist(),
        }
        for name, rule in rules.items():
            offsets = (
                np.zeros(3)
                if rule is None
                else np.array(rule.fit_offsets(data["val_p"], data["val_y"], curves.CLASSES, floors_by_name).offsets)
            )
            row[name] = {
                "offsets": [round(float(v), 2) for v in offsets],
                **held_out(data["held_p"], data["held_y"], offsets, floors),
            }
        rows.append(row)
    args.out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(
        "| rule | rounds whose offsets moved | held-out accuracy, mean "
        "| summed shortfall below the floors, mean | recall normal / bacterial / viral, mean |"
    )
    print("|---|---|---|---|---|")
    for name in rules:
        moved = sum(any(row[name]["offsets"]) for row in rows)
        accuracy = np.mean([row[name]["accuracy"] for row in rows])
        shortfall = np.mean([row[name]["shortfall"] for row in rows])
        recall = np.mean([row[name]["recall"] for row in rows], axis=0)
        print(
            f"| {name} | {moved} of {len(rows)} | {accuracy:.4f} | {shortfall:.4f} "
            f"| {' / '.join(f'{v:.3f}' for v in recall)} |"
        )
    print()
    for row in rows:
        if any(any(row[name]["offsets"]) for name in rules):
            cells = [f"{name}: {row[name]['offsets']} acc {row[name]['accuracy']:.3f}" for name in rules]
            print(f"{row['round']} (validation {row['val_per_class']}): " + "; ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
