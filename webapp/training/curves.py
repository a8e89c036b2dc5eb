"""A fine-tune's learning curves, drawn from the per-epoch metrics its progress keeps
(`TrainingRun.progress["history"]`, reported by learning.train.ProgressReport): one run's loss and
validation curves, or two runs' curves on shared axes."""

from __future__ import annotations

from collections.abc import Mapping

from webapp import charts

# the per-epoch metrics a run reports, and the words for them
LOSSES = {"train_loss": "training loss", "val_loss": "validation loss"}
VALIDATION = {"val_auc": "validation AUC", "val_acc": "validation accuracy"}
CHARTS = ("loss", "validation")


def history(progress: dict | None) -> list[dict]:
    """The finished epochs' metrics of a run (empty before its first epoch, or for a run from
    before they were kept)."""
    return [row for row in (progress or {}).get("history") or [] if isinstance(row, dict) and row.get("epoch")]


def _points(rows: list[dict], key: str) -> list[tuple[float, float | None]]:
    return [(row["epoch"], row.get(key)) for row in rows]


def run_chart(rows: list[dict], chart: str) -> str:
    """One run: its training and validation loss ("loss"), or its validation AUC and accuracy ("validation")."""
    if chart == "loss":
        lines = {words: _points(rows, key) for key, words in LOSSES.items()}
        return charts.line_chart(lines, title="Loss", xlabel="Epoch", ylabel="Loss (lower is better)")
    lines = {words: _points(rows, key) for key, words in VALIDATION.items()}
    return charts.line_chart(
        lines, title="Validation", xlabel="Epoch", ylabel="Validation metric (0 to 1)", ylim=(-0.02, 1.02)
    )


def compared_charts(runs: Mapping[str, list[dict]]) -> list[tuple[str, str]]:
    """Two (or more) runs, one chart per metric with a line per run: (the metric's words, SVG)."""
    found = []
    for key, words in {**LOSSES, **VALIDATION}.items():
        lines = {name: _points(rows, key) for name, rows in runs.items()}
        if not any(value is not None for points in lines.values() for _, value in points):
            continue
        bounded = key in VALIDATION
        found.append(
            (
                words,
                charts.line_chart(
                    lines,
                    title=words[:1].upper() + words[1:],
                    xlabel="Epoch",
                    ylabel=words[:1].upper() + words[1:] + (" (0 to 1)" if bounded else ""),
                    ylim=(-0.02, 1.02) if bounded else None,
                    width=4.6,
                    height=3.0,
                ),
            )
        )
    return found
