"""Tables of scripts/bench_loop.py's records over seeds: means with spreads per round, and the counts
the issue's targets name (candidates better by their intervals that the gate blocked, promoted
candidates that were worse on held-out patients).

Run: .venv/bin/python scripts/summarize_loop.py docs/benchmarks/loop-new-site.json [more.json ...]
Records of one scenario from several files (one per seed, say, or a seed's full fine-tune from
`bench_loop.py --full-on`) are merged; a seed's round found twice is an error. A full fine-tune's row
reads "6 (full)".
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path


def spread(values: list[float]) -> str:
    """mean ± standard deviation over seeds (the range too, with 3 or more); one value as it is."""
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    return f"{mean:.3f} ± {sd:.3f} ({min(values):.2f}–{max(values):.2f})"


def balanced(summary: dict) -> float:
    """Balanced accuracy: the mean of the per-class recalls (held-out prevalence aside)."""
    recalls = list(summary["recall"].values())
    return sum(recalls) / len(recalls)


def interval_says(comparison: dict, metric: str) -> str:
    """Better, worse or neither (an empty string), from a paired difference's interval."""
    difference = comparison[metric]["difference"]
    if difference["low"] is not None and difference["low"] > 0:
        return "better"
    if difference["high"] is not None and difference["high"] < 0:
        return "worse"
    return ""


def load(paths: list[Path]) -> tuple[str, list[dict]]:
    scenarios, records, seen = set(), [], set()
    for path in paths:
        found = json.loads(path.read_text())
        scenarios.add(found["settings"]["scenario"])
        rounds = {(record["seed"], record["round"]) for record in found["records"]}
        if rounds & seen:
            raise SystemExit(f"{path}: seed and round {sorted(rounds & seen)} are in an earlier file too")
        seen |= rounds
        records += found["records"]
    if len(scenarios) != 1:
        raise SystemExit(f"one scenario at a time, not {sorted(scenarios)}")
    return scenarios.pop(), records


def table(records: list[dict], classes: list[str]) -> str:
    """Per round, over seeds, the champion after the round (what the hospital runs) on the new films
    held out and at site A; round 0 is the shipped model."""
    rows = defaultdict(list)
    for record in records:
        rows[record["round"]].append(record)
    lines = [
        "| round | labels | seeds | held-out accuracy | balanced accuracy | "
        + " | ".join(f"{name} recall" for name in classes)
        + " | site A accuracy | normal-vs-bacterial AUC (held-out) | train + gate, s (median, range) |",
        "|---" * (8 + len(classes)) + "|",
    ]
    for number in sorted(rows):
        found = rows[number]
        new = [r["new"] if number == 0 else r["champion_new"] for r in found]
        site_a = [r["site_a"] if number == 0 else r["champion_site_a"] for r in found]
        seconds = [r["seconds"]["train_and_gate"] for r in found if number > 0]
        timing = f"{statistics.median(seconds):.0f} ({min(seconds):.0f}–{max(seconds):.0f})" if seconds else "—"
        kind = " (full)" if found[0].get("kind") == "full" else ""
        lines.append(
            f"| {number}{kind} | {found[0]['labels']} | {len(found)} | {spread([s['accuracy'] for s in new])} | "
            f"{spread([balanced(s) for s in new])} | "
            + " | ".join(spread([s["recall"].get(name, 0.0) for s in new]) for name in classes)
            + f" | {spread([s['accuracy'] for s in site_a])} | "
            f"{spread([s['normal_vs_bacterial_auc'] for s in new])} | {timing} |"
        )
    return "\n".join(lines)


def counts(records: list[dict]) -> str:
    rounds = [r for r in records if r["round"] > 0]
    lines = [f"Rounds: {len(rounds)} over seeds {sorted({r['seed'] for r in records})}."]
    for metric in ("accuracy", "macro_auc"):
        verdicts = [(r, interval_says(r["vs_champion_new"], metric)) for r in rounds]
        blocked = [r for r, says in verdicts if says == "better" and not r["gate_passed"]]
        promoted = [r for r, says in verdicts if says == "worse" and r["gate_passed"]]
        better = sum(says == "better" for _, says in verdicts)
        lines.append(
            f"- by held-out {metric}: {better} candidates better by their interval, {len(blocked)} of them "
            f"blocked{_which(blocked)}; {len(promoted)} promoted that were worse{_which(promoted)}"
        )
    passed = sum(r["gate_passed"] for r in rounds)
    lines.append(f"- the gate passed {passed} of {len(rounds)} candidates")
    old = [r["vs_champion_site_a"]["accuracy"]["difference"]["value"] for r in rounds]
    lines.append(f"- site A accuracy, candidate − champion: worst {min(old):+.3f}, mean {statistics.fmean(old):+.3f}")
    return "\n".join(lines)


def _which(records: list[dict]) -> str:
    return " (" + ", ".join(f"seed {r['seed']} round {r['round']}" for r in records) + ")" if records else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    scenario, records = load(args.files)
    classes = list(records[0]["new"]["recall"])
    print(f"## {scenario}\n\n{table(records, classes)}\n\n{counts(records)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
