"""The approvals page's charts: the candidate and the champion side by side on the gold set, as bars
with the paired bootstrap's intervals where the gate report has them."""

from __future__ import annotations

from dataclasses import dataclass

from learning.metrics import metric_key
from webapp import charts
from webapp.classes.catalog import display


@dataclass(frozen=True)
class Side:
    """One model as the charts show it: its legend, its gold-set metrics, and which side of the
    gate report's paired comparison holds its intervals ("candidate" or "champion")."""

    name: str
    metrics: dict
    role: str


def side_by_side(sides: list[Side], comparison: dict | None) -> list[tuple[str, str]]:
    """(alt text, SVG) for the overall metrics, then sensitivity and specificity per class."""
    intervals = (comparison or {}).get("metrics", {})

    def interval(key: str, role: str) -> tuple[float, float] | None:
        found = (intervals.get(key) or {}).get(role) or {}
        low, high = found.get("low"), found.get("high")
        return None if low is None or high is None else (float(low), float(high))

    def bars(groups: dict[str, str], values: dict[str, list[float | None]], **labels: str) -> str:
        """One group of bars per flat metric key in `groups` (key -> the words under it)."""
        return charts.grouped_bars(
            list(groups.values()),
            {side.name: values[side.name] for side in sides},
            {side.name: [interval(key, side.role) for key in groups] for side in sides},
            **labels,
        )

    overall = {"accuracy": "Accuracy", "macro_auc": "Macro AUC"}
    found = [
        (
            "Accuracy and macro AUC of each model",
            bars(
                overall,
                {side.name: [side.metrics.get(key) for key in overall] for side in sides},
                title="Overall",
                xlabel="Gold-set metric",
                ylabel="Value (0 to 1)",
            ),
        )
    ]
    per_class = {side.name: side.metrics.get("per_class", {}) for side in sides}
    classes = list(dict.fromkeys(name for of in per_class.values() for name in of))
    for metric in ("sensitivity", "specificity"):
        found.append(
            (
                f"{metric.capitalize()} per class of each model",
                bars(
                    {metric_key(metric, name): display(name) for name in classes},
                    {side: [of.get(name, {}).get(metric) for name in classes] for side, of in per_class.items()},
                    title=f"{metric.capitalize()} per class",
                    xlabel="Class",
                    ylabel=metric.capitalize(),
                ),
            )
        )
    return found
