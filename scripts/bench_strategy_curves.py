"""Labels to 99 % of the full-data AUC, for each query strategy against random, on the rounds the
worker runs (issue 22, "Strategies against random").

The setting is a new site, as in `bench_loop.py --scenario new-site`: the shipped v1 is the
champion, and site B's films are the validation and test patients of our Kermany split (films v1
never took a gradient step on), each taken differently (`learning.simulate.other_machine`: a 12 %
crop, lower contrast, gamma 1.5, sensor noise). Per seed, site B's patients are divided into a pool
(60 %) and held-out films (40 %).

Each curve starts from v1 and its scores on the pool. The strategy ranks the unlabeled pool as the
review queue does (`learning.strategies.rank`, the configured queue batch and random share), the
oracle doctor labels the first films of that order up to the next step of the schedule, and a
round is trained **from v1** on every label so far plus the replay of site A's films
(`webapp.training.recipe.train` with config.yaml's round settings, the trunk activations
stored, 224 px; the operating point fitted on the round's validation split as the worker does).
That candidate is scored on the held-out films, and it scores the rest of the pool for the next
pick. Training each step from v1, rather than from the previous step's model, keeps the curve a
function of the labels alone: the gate's verdicts are `bench_loop.py`'s subject, not this one's.

The ceiling for a seed is the same round trained on every pool film labeled. "Labels to 99 %" is
the first step of the schedule at which held-out macro AUC reaches 0.99 times the ceiling's.

Run: .venv/bin/python scripts/bench_strategy_curves.py [--seeds 0 1 2] [--strategies random cold_start ...]
     [--schedule 40 80 120 160 240 320 480 640] [--work DIR] [--out docs/benchmarks/strategy-curves.json] [--fresh]
     .venv/bin/python scripts/bench_strategy_curves.py --summarize docs/benchmarks/strategy-curves.json
Rows are appended to the output as each step finishes, and a rerun skips the curves already there,
so a run cut short goes on where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from learning.data import LabeledImage  # noqa: E402
from learning.model import XrayNet, load_model  # noqa: E402
from learning.simulate import other_machine  # noqa: E402
from learning.strategies import PoolScores, rank, subset  # noqa: E402
from learning.train import TrainResult  # noqa: E402
from webapp.config import Settings, load_settings  # noqa: E402
from webapp.training import recipe  # noqa: E402

DATA = ROOT / "data/kermany_cxr_train"
SPLIT = ROOT / "models/kermany-split.csv"
CLASSES = ["normal", "bacterial_pneumonia", "viral_pneumonia"]
STRATEGIES = ["random", "least_confidence", "cold_start", "batch_diverse", "margin", "entropy", "mc_dropout"]


def site_b(work: Path) -> list[LabeledImage]:
    """The validation and test patients' films, taken differently; each film's change is seeded by
    its name, so every run and seed reads the same PNG (and the same stored activations)."""
    films = []
    for row in csv.DictReader(SPLIT.open()):
        if row["part"] == "train":
            continue
        target = work / "site-b" / row["filename"].replace(".jpeg", ".png")
        if not target.exists():
            image = np.asarray(Image.open(DATA / row["filename"]).convert("L"))
            rng = np.random.default_rng(int(hashlib.sha256(row["filename"].encode()).hexdigest()[:8], 16))
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(other_machine(image, rng)).save(target)
        label = CLASSES.index(row["filename"].split("/")[0])
        films.append(LabeledImage(str(target), label, row["patient_id"], "b"))
    return films


def replay(size: int, seed: int) -> list[LabeledImage]:
    """`size` of v1's training films, every class in proportion: the round's replay of site A."""
    rows = [r for r in csv.DictReader(SPLIT.open()) if r["part"] == "train"]
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        by_class[CLASSES.index(row["filename"].split("/")[0])].append(row)
    picked = []
    for label, members in sorted(by_class.items()):
        share = round(size * len(members) / len(rows))
        for index in rng.choice(len(members), size=share, replace=False):
            picked.append(
                LabeledImage(str(DATA / members[index]["filename"]), label, members[index]["patient_id"], "a")
            )
    return picked


def divide(films: list[LabeledImage], seed: int) -> tuple[list[LabeledImage], list[LabeledImage]]:
    """Pool and held-out films, by patient."""
    patients = sorted({film.group for film in films if film.group})
    np.random.default_rng(seed).shuffle(patients)
    pooled = set(patients[: int(0.6 * len(patients))])
    return [f for f in films if f.group in pooled], [f for f in films if f.group not in pooled]


def settings_for(work: Path, seed: int, frozen_blocks: int | None) -> Settings:
    """config.yaml's settings with the bench's home (its activation store), the seed's rounds and,
    given `frozen_blocks`, another cut."""
    environ = {"MEDAL_HOME": str(work), "MEDAL_TRAINING__SEED": str(seed)}
    if frozen_blocks is not None:
        environ["MEDAL_TRAINING__ROUND__FROZEN_BLOCKS"] = str(frozen_blocks)
    return load_settings(ROOT / "config.yaml", environ)


def train_round(
    v1: XrayNet, labeled: list[LabeledImage], replayed: list[LabeledImage], settings: Settings
) -> TrainResult:
    """The worker's round from v1 (`webapp.training.recipe.train`), with its operating point."""
    return recipe.train("round", settings, v1.spec, labeled, replayed, v1, v1, {}, lambda _: None).result


def scores(net: XrayNet, films: list[LabeledImage], settings: Settings, seed: int) -> PoolScores:
    """The films' scores from the stored trunk activations, with the seed's MC-dropout draws."""
    found = recipe.stored_scores(
        net, [film.path for film in films], settings, settings.active_learning.mc_dropout_passes, seed
    )
    assert found is not None  # EfficientNet-Lite0 cut where config.yaml's rounds cut it
    return found


def held_out_figures(net: XrayNet, held_out: list[LabeledImage], settings: Settings) -> dict:
    probabilities = scores(net, held_out, settings, 0).probabilities
    truth = np.array([film.class_index for film in held_out])
    called = probabilities.argmax(1)
    return {
        "macro_auc": float(roc_auc_score(truth, probabilities, multi_class="ovr", average="macro")),
        "accuracy": float((called == truth).mean()),
        "recall": {name: float((called[truth == i] == i).mean()) for i, name in enumerate(CLASSES)},
    }


@dataclass(frozen=True)
class Context:
    """One seed's setting: the champion, its pool and held-out films, the replay and the settings."""

    v1: XrayNet
    pool: list[LabeledImage]
    held_out: list[LabeledImage]
    replay: list[LabeledImage]
    settings: Settings
    schedule: list[int]


def curve(strategy: str, seed: int, context: Context, emit) -> None:
    v1, pool, settings = context.v1, context.pool, context.settings
    queue = settings.active_learning
    current = scores(v1, pool, settings, seed)
    labeled: list[int] = []
    for step, target in enumerate(context.schedule):
        remaining = np.setdiff1d(np.arange(len(pool)), labeled)
        order, _ = rank(
            strategy,
            subset(current, remaining),
            batch=queue.batch_size,
            random_share=queue.random_share,
            seed=seed * 1000 + step,
        )
        labeled += [int(i) for i in remaining[order[: target - len(labeled)]]]
        started = time.monotonic()
        result = train_round(v1, [pool[i] for i in labeled], context.replay, settings)
        seconds = time.monotonic() - started
        current = scores(result.net, pool, settings, seed)
        emit(
            {
                "seed": seed,
                "strategy": strategy,
                "labels": len(labeled),
                "train_s": round(seconds, 1),
                "viral_labels": sum(pool[i].class_index == 2 for i in labeled),
                **held_out_figures(result.net, context.held_out, settings),
            }
        )


def labels_to_reach(rows: list[dict], ceiling: float) -> int | None:
    for row in sorted(rows, key=lambda r: r["labels"]):
        if row["macro_auc"] >= 0.99 * ceiling:
            return row["labels"]
    return None


def summarize(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    ceilings = {r["seed"]: r for r in rows if r["strategy"] == "ceiling"}
    starts = {r["seed"]: r for r in rows if r["strategy"] == "v1"}
    curves: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["strategy"] not in ("ceiling", "v1"):
            curves[row["strategy"]][row["seed"]].append(row)
    schedule = sorted({r["labels"] for s in curves.values() for c in s.values() for r in c})
    lines = [
        "| seed | v1 (0 labels) | ceiling (pool labels) |",
        "|---|---|---|",
        *(
            f"| {seed} | {starts[seed]['macro_auc']:.3f} | {c['macro_auc']:.3f} ({c['labels']}) |"
            for seed, c in sorted(ceilings.items())
            if seed in starts
        ),
        "",
        "| strategy | seeds | "
        + " | ".join(f"AUC at {n}" for n in schedule)
        + " | mean over the schedule | labels to 99 % of the ceiling |",
        "|---|---|" + "---|" * len(schedule) + "---|---|",
    ]
    for strategy in [s for s in STRATEGIES if s in curves]:
        seeds = sorted(seed for seed in curves[strategy] if seed in ceilings)
        cells = []
        for n in schedule:
            values = [r["macro_auc"] for seed in seeds for r in curves[strategy][seed] if r["labels"] == n]
            cells.append(
                f"{np.mean(values):.3f} ± {np.std(values):.3f}"
                if len(values) > 1
                else (f"{values[0]:.3f}" if values else "—")
            )
        reached = [labels_to_reach(curves[strategy][seed], ceilings[seed]["macro_auc"]) for seed in seeds]
        words = ", ".join("not within the schedule" if n is None else str(n) for n in reached)
        area = np.mean([np.mean([r["macro_auc"] for r in curves[strategy][seed]]) for seed in seeds])
        lines.append(f"| {strategy} | {len(seeds)} | " + " | ".join(cells) + f" | {area:.3f} | {words} |")
    return "\n".join(lines)


def _complete(out: Path, last: int) -> set[tuple[int, str]]:
    """The curves a run already finished; the rows of one cut short are dropped, to run again."""
    if not out.exists():
        return set()
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    done = {(r["seed"], r["strategy"]) for r in rows if r["strategy"] in ("v1", "ceiling") or r["labels"] >= last}
    out.write_text("".join(json.dumps(r) + "\n" for r in rows if (r["seed"], r["strategy"]) in done))
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--strategies", nargs="*", default=STRATEGIES, choices=STRATEGIES)
    parser.add_argument(
        "--frozen-blocks", type=int, default=None, help="cut the network here instead of at config.yaml's block"
    )
    parser.add_argument("--schedule", type=int, nargs="+", default=[40, 80, 120, 160, 240, 320, 480, 640])
    parser.add_argument("--fresh", action="store_true", help="start the output afresh instead of going on with it")
    parser.add_argument("--work", type=Path, default=Path("/tmp/medal-strategy-curves"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks/strategy-curves.json")
    parser.add_argument("--summarize", type=Path, default=None, help="print the tables of a finished or partial run")
    args = parser.parse_args()
    if args.summarize:
        print(summarize(args.summarize))
        return 0
    if args.fresh:
        args.out.unlink(missing_ok=True)
    done = _complete(args.out, max(args.schedule))
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def emit(row: dict) -> None:
        print(json.dumps(row), flush=True)
        with args.out.open("a") as handle:
            handle.write(json.dumps(row) + "\n")

    v1 = load_model(ROOT / "models/medal-cxr-v1")
    films = site_b(args.work)
    for seed in args.seeds:
        settings = settings_for(args.work, seed, args.frozen_blocks)
        pool, held_out = divide(films, seed)
        context = Context(
            v1,
            pool,
            held_out,
            replay(settings.training.replay_samples, seed),
            settings,
            [n for n in args.schedule if n < len(pool)],
        )
        if (seed, "v1") not in done:
            emit({"seed": seed, "strategy": "v1", "labels": 0, **held_out_figures(v1, held_out, settings)})
        if (seed, "ceiling") not in done:
            started = time.monotonic()
            ceiling = train_round(v1, pool, context.replay, settings)
            emit(
                {
                    "seed": seed,
                    "strategy": "ceiling",
                    "labels": len(pool),
                    "frozen_blocks": settings.training.round.frozen_blocks,
                    "train_s": round(time.monotonic() - started, 1),
                    **held_out_figures(ceiling.net, held_out, settings),
                }
            )
        for strategy in args.strategies:
            if (seed, strategy) in done:
                continue
            curve(strategy, seed, context, emit)
    print(summarize(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
