"""A new class and a new site through the loop, with an oracle doctor (issue benchmark).

The loop as the platform runs it, on frozen ImageNet EfficientNet-Lite0 features with the head
trained on them (the head-first phase of a fine-tune, which is what moves a model with few labels):
every round the strategy picks a batch from the pool, the oracle labels it, a candidate head is
trained class-balanced on all labels (replay of the first site's labels included), and the gate
(registry.gate.check, the real rules: floors as a ratchet, max drop) decides against the champion.

Scenarios, on the Kermany radiographs in the repo, split by patient:
  new-class: the first model knows normal and bacterial pneumonia; viral pneumonia is added as a
             class through the loop. Reports viral recall on held-out patients against labels
             spent, and the old classes' AUC (normal vs bacterial) before and after.
  new-site:  the first model is trained at site A; site B is the same kind of data made different
             (lower contrast, gamma 1.5, noise, a 12 % crop, as another machine would). Reports
             accuracy at site B against labels spent, and site A's accuracy alongside.

Run: .venv/bin/python scripts/bench_adaptation.py [--size 160] [--seeds 0,1,2] [--rounds 5 --batch 40]
Writes docs/benchmarks/adaptation.json and prints a summary; docs/benchmarks.md quotes it.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.metrics import recall_score, roc_auc_score

from learning.data import patient_split, to_tensor
from learning.metrics import evaluate
from learning.model import ModelSpec, XrayNet
from learning.simulate import other_machine
from learning.strategies import PoolScores, rank, select
from registry.gate import GatePolicy, check

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data/kermany_cxr_train"
CLASSES = ["normal", "bacterial_pneumonia", "viral_pneumonia"]
POLICY = GatePolicy(
    min_gold_size=20,
    min_sensitivity={"normal": 0.80, "bacterial_pneumonia": 0.75, "viral_pneumonia": 0.60},
    max_drop={"accuracy": 0.02, "macro_auc": 0.01, "sensitivity": 0.03},
)


def features(paths: list[Path], size: int, site_b: bool, seed: int = 0) -> np.ndarray:
    torch.manual_seed(0)
    net = XrayNet(ModelSpec("efficientnet_lite0", CLASSES, size), pretrained=True).eval()
    rng = np.random.default_rng(seed)
    out = []
    with torch.inference_mode():
        for start in range(0, len(paths), 64):
            batch = []
            for path in paths[start : start + 64]:
                image = np.asarray(Image.open(path).convert("L"), dtype=np.uint8)
                if site_b:
                    image = other_machine(image, rng)
                batch.append(to_tensor(image, size))  # the one transform of the platform
            out.append(net.embed(torch.stack(batch)).numpy())
    return np.concatenate(out).astype(np.float32)


class Head:
    """A linear head trained class-balanced on frozen features (softmax regression, Adam)."""

    def __init__(self, classes: int, dim: int):
        self.layer = torch.nn.Linear(dim, classes)
        self.mean = np.zeros(dim, dtype=np.float32)
        self.std = np.ones(dim, dtype=np.float32)

    def fit(self, x: np.ndarray, y: np.ndarray, epochs: int = 150, seed: int = 0) -> Head:
        torch.manual_seed(seed)
        self.mean, self.std = x.mean(0), x.std(0) + 1e-6
        inputs, targets = torch.from_numpy((x - self.mean) / self.std), torch.from_numpy(y).long()
        counts = np.bincount(y, minlength=self.layer.out_features).astype(np.float32)
        weight = torch.from_numpy(np.where(counts > 0, counts.sum() / np.maximum(counts, 1), 0.0)).float()
        optimizer = torch.optim.Adam(self.layer.parameters(), lr=0.01, weight_decay=1e-3)
        loss = torch.nn.CrossEntropyLoss(weight=weight)
        for _ in range(epochs):
            optimizer.zero_grad()
            loss(self.layer(inputs), targets).backward()
            optimizer.step()
        return self

    def proba(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(self.layer(torch.from_numpy((x - self.mean) / self.std)), 1).numpy()


def pad(probabilities: np.ndarray, classes: int) -> np.ndarray:
    """An older head that does not know a class gives it probability 0 (as the gate does)."""
    out = np.zeros((len(probabilities), classes))
    out[:, : probabilities.shape[1]] = probabilities
    return out


def gate(candidate: np.ndarray, champion: np.ndarray, y: np.ndarray, classes: list[str]) -> dict:
    mine = evaluate(y, candidate, classes).to_dict()
    theirs = evaluate(y, pad(champion, len(classes)), classes).to_dict()
    new = classes[champion.shape[1] :]  # classes the champion's head does not have
    result = check(mine, theirs, POLICY, len(y), new_classes=new)
    better = mine["accuracy"] > theirs["accuracy"] and (mine["macro_auc"] or 0) > (theirs["macro_auc"] or 0)
    return {
        "passed": result.passed,
        "verdict": result.verdict,
        "failures": result.failures,
        "strictly_better": bool(better),
        "blocked_better": bool(better and not result.passed),
    }


def loop(
    x_seed,
    y_seed,
    x_pool,
    y_pool,
    x_gold,
    y_gold,
    x_test,
    y_test,
    classes_before,
    classes_after,
    strategy,
    seed,
    rounds,
    batch,
    report,
):
    """Rounds of: pick, label, train a candidate head, gate against the champion, promote if passed."""
    champion = Head(classes_before, x_seed.shape[1]).fit(x_seed, y_seed, seed=seed)
    names = CLASSES[:classes_after]
    labeled_x, labeled_y = [x_seed], [y_seed]
    open_pool = np.arange(len(x_pool))
    rows = [report(0, champion, "start")]
    for round_ in range(1, rounds + 1):
        scores = PoolScores(probabilities=pad(champion.proba(x_pool[open_pool]), classes_after))
        order, _ = rank(strategy, scores, batch=batch, random_share=0.1 if strategy != "random" else 0, seed=seed)
        picked = open_pool[order[:batch]]
        open_pool = np.setdiff1d(open_pool, picked)
        labeled_x.append(x_pool[picked])
        labeled_y.append(y_pool[picked])
        x, y = np.concatenate(labeled_x), np.concatenate(labeled_y)
        candidate = Head(classes_after, x.shape[1]).fit(x, y, seed=seed)
        verdict = gate(candidate.proba(x_gold), champion.proba(x_gold), y_gold, names)
        if verdict["passed"]:
            champion = candidate
        rows.append(report(round_ * batch, champion, verdict))
    return rows


def strategy_curves(x: np.ndarray, labels: np.ndarray, parts: dict, seed: int, args) -> list[dict]:
    """Every query strategy against random on the three classes: macro AUC on the test patients
    against labels spent, from 30 labels, and the full-data AUC (every pool label) as the ceiling."""
    from learning.strategies import available

    pool, test = np.array(parts["first"] + parts["pool"]), np.array(parts["test"])
    full = Head(3, x.shape[1]).fit(x[pool], labels[pool], seed=seed)
    ceiling = float(roc_auc_score(labels[test], full.proba(x[test]), multi_class="ovr"))
    rng = np.random.default_rng(seed)
    start = rng.choice(len(pool), 30, replace=False)
    out = []
    for strategy in available():
        labeled = set(start.tolist())
        curve = []
        for _ in range(args.strategy_rounds):
            chosen = np.array(sorted(labeled))
            head = Head(3, x.shape[1]).fit(x[pool[chosen]], labels[pool[chosen]], seed=seed)
            auc = float(roc_auc_score(labels[test], head.proba(x[test]), multi_class="ovr"))
            curve.append({"labels": len(labeled), "macro_auc": auc})
            open_ = np.array([i for i in range(len(pool)) if i not in labeled])
            # MC-dropout passes: the head with dropout on its inputs, sampled
            passes = []
            for _pass in range(8):
                keep = rng.random(x.shape[1]) > 0.2
                passes.append(head.proba(x[pool[open_]] * keep / 0.8))
            scores = PoolScores(
                probabilities=head.proba(x[pool[open_]]), embeddings=x[pool[open_]], mc_probabilities=np.stack(passes)
            )
            chosen_now, _ = select(strategy, scores, args.batch, seed=seed)
            labeled.update(open_[chosen_now].tolist())
        reached = next((row["labels"] for row in curve if row["macro_auc"] >= 0.99 * ceiling), None)
        out.append(
            {
                "seed": seed,
                "strategy": strategy,
                "ceiling": ceiling,
                "pool": len(pool),
                "curve": curve,
                "labels_to_99pct": reached,
            }
        )
        print(
            json.dumps(
                {
                    "strategies": strategy,
                    "seed": seed,
                    "ceiling": round(ceiling, 4),
                    "labels_to_99pct": reached,
                    "last": curve[-1],
                }
            ),
            flush=True,
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=40)
    parser.add_argument("--strategies", default="least_confidence,random")
    parser.add_argument("--strategy-rounds", type=int, default=12, help="rounds of the strategy comparison")
    parser.add_argument("--limit", type=int, default=None, help="a random sample of the images (a smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks/adaptation.json")
    args = parser.parse_args()
    started = time.time()
    rows = list(csv.DictReader((DATA / "labels.csv").open()))
    if args.limit:
        rows = [rows[i] for i in sorted(np.random.default_rng(0).choice(len(rows), args.limit, replace=False))]
    paths = [DATA / row["filename"] for row in rows]
    labels = np.array([CLASSES.index(row["label"]) for row in rows])
    groups = [row["patient_id"] for row in rows]
    print(f"features of {len(paths)} images at {args.size} px (site A, then site B) ...", flush=True)
    cache = ROOT / "instance" / "bench-cache" / f"features-{args.size}-{len(paths)}.npz"
    if cache.exists():  # the features depend only on the images, the size and the site change
        with np.load(cache) as stored:
            site_a, site_b = stored["site_a"], stored["site_b"]
    else:
        site_a = features(paths, args.size, site_b=False)
        site_b = features(paths, args.size, site_b=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, site_a=site_a, site_b=site_b)
    print(f"features in {time.time() - started:.0f} s", flush=True)
    results: dict = {
        "size": args.size,
        "rounds": args.rounds,
        "batch": args.batch,
        "policy": str(POLICY),
        "new_class": [],
        "new_site": [],
        "strategies": [],
    }
    for seed in [int(s) for s in args.seeds.split(",")]:
        parts = patient_split(groups, {"first": 0.35, "pool": 0.35, "gold": 0.1, "test": 0.2}, seed, labels)
        first, pool, gold, test = (np.array(parts[name]) for name in ("first", "pool", "gold", "test"))
        for strategy in args.strategies.split(","):
            # new class: the first model knows normal and bacterial only
            known = first[labels[first] < 2]
            old = test[labels[test] < 2]

            def new_class_report(spent, model, verdict, test=test, old=old):
                probabilities = pad(model.proba(site_a[test]), 3)
                predicted = probabilities.argmax(1)
                old_p = pad(model.proba(site_a[old]), 3)
                return {
                    "labels": spent,
                    "viral_recall": float(recall_score(labels[test] == 2, predicted == 2)),
                    "old_auc": float(roc_auc_score(labels[old] == 1, old_p[:, 1] / old_p[:, :2].sum(1))),
                    "accuracy": float((predicted == labels[test]).mean()),
                    "gate": verdict,
                }

            curve = loop(
                site_a[known],
                labels[known],
                site_a[pool],
                labels[pool],
                site_a[gold],
                labels[gold],
                site_a[test],
                labels[test],
                2,
                3,
                strategy,
                seed,
                args.rounds,
                args.batch,
                new_class_report,
            )
            results["new_class"].append({"seed": seed, "strategy": strategy, "curve": curve})
            print(json.dumps({"new_class": strategy, "seed": seed, "last": curve[-1]}), flush=True)

            # new site: trained at A; B's pool and gold; A's labels are replayed
            def new_site_report(spent, model, verdict, test=test):
                return {
                    "labels": spent,
                    "site_b_accuracy": float((model.proba(site_b[test]).argmax(1) == labels[test]).mean()),
                    "site_a_accuracy": float((model.proba(site_a[test]).argmax(1) == labels[test]).mean()),
                    "gate": verdict,
                }

            curve = loop(
                site_a[first],
                labels[first],
                site_b[pool],
                labels[pool],
                site_b[gold],
                labels[gold],
                site_b[test],
                labels[test],
                3,
                3,
                strategy,
                seed,
                args.rounds,
                args.batch,
                new_site_report,
            )
            results["new_site"].append({"seed": seed, "strategy": strategy, "curve": curve})
            print(json.dumps({"new_site": strategy, "seed": seed, "last": curve[-1]}), flush=True)
        results["strategies"].extend(strategy_curves(site_a, labels, parts, seed, args))
    results["seconds"] = round(time.time() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out} in {results['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
