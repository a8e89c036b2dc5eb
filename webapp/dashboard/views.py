"""The model dashboard pages (engineers): every version's gold-set metrics, charts across versions
with promotions and rollbacks marked, the learning curve, and two versions compared."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from registry.uris import CHAMPION
from webapp import charts as draw
from webapp.classes.catalog import display
from webapp.dashboard import versions
from webapp.monitoring import drift

bp = Blueprint("dashboard", __name__, template_folder="templates")


@bp.get("/dashboard")
def page():
    rows = versions.version_metrics()  # the registry read once: each row carries its aliases
    champion = next((row.version for row in rows if CHAMPION in row.aliases), None)
    events = versions.model_events()
    measured = [row for row in rows if row.metrics]
    class_names = list(dict.fromkeys(name for row in measured for name in row.class_names()))
    return render_template(
        "dashboard/dashboard.html",
        rows=rows,
        measured=measured,
        events=events,
        class_names=class_names,
        per_class=versions.PER_CLASS,
        charts=_trend_charts(measured, events, class_names) if measured else [],
        learning=_learning_chart(versions.learning_curve(rows)),
        unscored=[row.version for row in measured if not row.scored_snapshots],
        default_pair=_default_pair(rows, champion),
        drift_report=drift.report(champion),  # stored statistics only: drifting groups are named on the page
    )


@bp.get("/dashboard/compare")
def compare():
    a = versions.parse_version(request.args.get("a"), "the first version")
    b = versions.parse_version(request.args.get("b"), "the second version")
    comparison = versions.compare(a, b)
    sides = (comparison.a, comparison.b)
    roc = {}
    for side in sides:
        for name, curve in side.roc.items():
            roc.setdefault(name, {})[f"v{side.version} (AUC {curve.auc:.3f})"] = (
                curve.false_positive_rate,
                curve.true_positive_rate,
            )
    reliability = {
        f"v{side.version} (ECE {side.reliability.ece:.3f})": (
            side.reliability.mean_confidence,
            side.reliability.accuracy,
        )
        for side in sides
        if side.reliability is not None and side.n
    }
    return render_template(
        "dashboard/compare.html",
        comparison=comparison,
        versions=[row.version for row in versions.version_metrics()],
        roc_charts=[
            (display(name), draw.roc_chart(curves, title=f"ROC: {display(name)} against the rest"))
            for name, curves in roc.items()
        ],
        reliability_chart=draw.reliability_chart(reliability, title="Reliability on the gold set")
        if reliability
        else None,
        confusion_charts=[
            (
                side,
                draw.confusion_chart(
                    side.confusion, [display(name) for name in side.confusion_classes], title=f"v{side.version}"
                ),
            )
            for side in sides
            if side.confusion
        ],
    )


@bp.app_template_filter("svg_data_uri")
def svg_data_uri(svg: str) -> str:
    return draw.svg_data_uri(svg)


def _markers(events: list[versions.ModelEvent]) -> list[draw.Marker]:
    return [draw.Marker(event.marked_version, event.kind) for event in events if event.marked_version is not None]


def _trend_charts(rows: list[versions.VersionMetrics], events, class_names: list[str]) -> list[tuple[str, str]]:
    """(title, SVG): the overall metrics, then one chart per per-class metric with a line per class."""
    markers = _markers(events)
    charts = [
        (
            "Overall",
            draw.line_chart(
                {
                    versions.LABELS[metric]: [(row.version, row.value(metric)) for row in rows]
                    for metric in versions.OVERALL
                },
                markers,
                title="Accuracy, macro AUC and ECE",
                xlabel="Model version",
                ylabel="Metric value (0 to 1)",
                ylim=(-0.02, 1.02),
                version_ticks=True,
            ),
        )
    ]
    for metric in ("sensitivity", "specificity", "precision", "f1"):
        series = {display(name): [(row.version, row.value(metric, name)) for row in rows] for name in class_names}
        title = versions.LABELS[metric] + (" (= recall)" if metric == "sensitivity" else "")
        charts.append(
            (
                title,
                draw.line_chart(
                    series,
                    markers,
                    title=f"{title[0].upper()}{title[1:]} per class",
                    xlabel="Model version",
                    ylabel=versions.LABELS[metric].capitalize(),
                    ylim=(-0.02, 1.02),
                    version_ticks=True,
                ),
            )
        )
    return charts


def _learning_chart(points: list[dict]) -> str | None:
    if not points:
        return None
    return draw.line_chart(
        {
            "macro AUC": [(p["num_labels"], p["macro_auc"]) for p in points],
            "accuracy": [(p["num_labels"], p["accuracy"]) for p in points],
        },
        title="Learning curve: gold-set metric against doctor labels",
        xlabel="Doctor labels the version was trained with",
        ylabel="Gold-set metric (0 to 1)",
        ylim=(-0.02, 1.02),
        labels=[(p["num_labels"], p["macro_auc"], f"v{p['version']}") for p in points if p["macro_auc"] is not None],
        width=6.4,
    )


def _default_pair(rows: list[versions.VersionMetrics], champion: int | None) -> tuple[int | None, int | None]:
    """The champion against the newest other version, the form's first choice."""
    numbers = [row.version for row in rows]
    if len(numbers) < 2:
        return (numbers[0] if numbers else None), None
    first = champion if champion in numbers else numbers[-2]
    other = next(v for v in reversed(numbers) if v != first)
    return first, other
