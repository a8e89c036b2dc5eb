"""Server-side charts as SVG text (matplotlib figures without pyplot: no display, no network): line
charts with marked events, ROC curves, reliability diagrams and confusion matrices. Pages show them as
`<img src="{{ svg|svg_data_uri }}">`, which the CSP (`img-src 'self' data:`) allows; matplotlib
escapes every label it writes, so class names and version text cannot break out of the SVG.
Every chart titles both its axes: a reader should never have to guess what a number measures.
A chart is drawn once per content and kept (`drawn_once`): the dashboard's six charts cost seconds
to draw and change only when a gate runs or a champion changes."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",  # text stays text: readable, searchable, escaped by matplotlib
    "svg.hashsalt": "medal",  # the same chart gives the same SVG
    "font.size": 9,
    "font.family": "sans-serif",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
}
MARKER_STYLE = {
    "promotion": {"color": "#2e7d32", "linestyle": "--", "text": "promoted"},
    "rollback": {"color": "#c62828", "linestyle": ":", "text": "rolled back"},
}
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
KEPT = 64  # charts kept per process (each SVG is tens of kB): a dashboard's six and a few comparisons


@dataclass(frozen=True)
class Marker:
    """A vertical line on a line chart at `x`, e.g. a promotion or a rollback at a version."""

    x: float
    kind: str  # a key of MARKER_STYLE
    text: str = ""  # written beside the line; empty: the kind's own word (promoted, rolled back)


@contextlib.contextmanager
def _canvas(style: Mapping[RcKeyType, Any] | None = None, **figure: Any) -> Iterator[Figure]:
    """A figure, drawn under `style` (matplotlib's rc parameters, process-wide: set and restored
    under the caller's `_drawing` lock) where one is given. matplotlib is imported by the first
    chart, not with the app: building the app, and so every `medal` command, does not pay for it."""
    # matplotlib writes a font cache on first use: never into the home directory of the web user
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(tempfile.gettempdir(), "medal-matplotlib"))
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    if style is None:
        yield Figure(**figure)
        return
    with rc_context(dict(style)):
        yield Figure(**figure)


_kept: OrderedDict[str, str] = OrderedDict()  # hash of a chart's function and arguments -> its SVG
# matplotlib's rc parameters are process-wide (rc_context sets and restores them): one chart at a time
_drawing = threading.Lock()


def drawn_once(draw: Callable[..., str]) -> Callable[..., str]:
    """`draw`, keeping the SVG of each distinct call: the same arguments give the same SVG (fixed
    hash salt, no date), so a page shown again with unchanged data draws nothing."""

    @functools.wraps(draw)
    def kept(*args, **kwargs) -> str:
        key = hashlib.sha256(json.dumps([draw.__name__, args, kwargs], default=_plain).encode()).hexdigest()
        with _drawing:
            svg = _kept.get(key)
            if svg is None:
                svg = _kept[key] = draw(*args, **kwargs)
                while len(_kept) > KEPT:
                    _kept.popitem(last=False)
            else:
                _kept.move_to_end(key)
            return svg

    return kept


def _plain(value: Any) -> Any:
    """JSON for what charts are given besides plain numbers: markers, numpy arrays and numbers."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [type(value).__name__, dataclasses.asdict(value)]
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"a chart cannot be keyed by {type(value).__name__}")


@drawn_once
def line_chart(
    series: Mapping[str, Sequence[tuple[float, float | None]]],
    markers: Sequence[Marker] = (),
    *,
    title: str = "",
    xlabel: str,
    ylabel: str,
    ylim: tuple[float, float] | None = None,
    version_ticks: bool = False,
    labels: Sequence[tuple[float, float, str]] = (),
    width: float = 5.6,
    height: float = 3.3,
) -> str:
    """One line per series of (x, y) points; a None y leaves a gap. `version_ticks` labels integer
    x values as v1, v2, ...; otherwise x ticks are whole numbers (counts). `labels` writes a short
    text beside a point (e.g. the version on a learning curve)."""
    with _canvas(STYLE, figsize=(width, height), layout="constrained") as figure:
        axes = figure.subplots()
        xs: set[float] = set()
        for colour, (name, points) in zip(_colours(), series.items()):
            points = sorted(points)
            xs.update(x for x, _ in points)
            along = [p[0] for p in points]
            heights = [float("nan") if p[1] is None else p[1] for p in points]
            axes.plot(along, heights, marker="o", markersize=4, linewidth=1.6, color=colour, label=name)
        seen: dict[float, int] = {}
        for marker in markers:
            style = MARKER_STYLE.get(marker.kind, {"color": "#555", "linestyle": "-.", "text": marker.kind})
            axes.axvline(marker.x, color=style["color"], linestyle=style["linestyle"], linewidth=1.2, alpha=0.85)
            stacked = seen.get(marker.x, 0)
            seen[marker.x] = stacked + 1
            axes.annotate(
                marker.text or style["text"],
                xy=(marker.x, 1.0),
                xycoords=axes.get_xaxis_transform(),
                xytext=(3, -4 - 11 * stacked),
                textcoords="offset points",
                fontsize=7.5,
                color=style["color"],
                va="top",
            )
        for x, y, text in labels:
            axes.annotate(text, xy=(x, y), xytext=(4, 4), textcoords="offset points", fontsize=7.5, color="#333")
        if ylim is not None:
            axes.set_ylim(*ylim)
        if version_ticks and xs:
            ticks = sorted({int(x) for x in xs} | {int(m.x) for m in markers})
            axes.set_xticks(ticks, [f"v{t}" for t in ticks])
        else:
            from matplotlib.ticker import MaxNLocator

            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(xs) == 1:  # one x value: a readable axis around it rather than a zoom into rounding noise
            (only,) = xs
            axes.set_xlim(only - 1, only + 1)
        if title:
            axes.set_title(title, loc="left", fontsize=10, fontweight="bold")
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        if series:  # below the axes, where it covers neither the lines nor the event labels
            axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(len(series), 3), fontsize=8)
        return _svg(figure)


@drawn_once
def roc_chart(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, title: str = "") -> str:
    """ROC curves: name -> (false positive rates, true positive rates); the chance diagonal dashed."""
    with _canvas(STYLE, figsize=(4.2, 3.6), layout="constrained") as figure:
        axes = figure.subplots()
        axes.plot([0, 1], [0, 1], linestyle="--", color="#999", linewidth=1, label="chance")
        # alternating dashes: two versions with the same curve stay both visible
        for index, (colour, (name, (fpr, tpr))) in enumerate(zip(_colours(), curves.items())):
            dashes = "-" if index % 2 == 0 else (0, (4, 2))
            axes.step(fpr, tpr, where="post", color=colour, linewidth=1.8, linestyle=dashes, label=name)
        _unit_square(axes, "False positive rate (1 − specificity)", "True positive rate (sensitivity)", title)
        axes.legend(loc="lower right", fontsize=7.5)
        return _svg(figure)


@drawn_once
def reliability_chart(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, title: str = "") -> str:
    """Reliability diagram: name -> (mean confidence per bin, accuracy per bin); the diagonal is perfect calibration."""
    with _canvas(STYLE, figsize=(4.2, 3.6), layout="constrained") as figure:
        axes = figure.subplots()
        axes.plot([0, 1], [0, 1], linestyle="--", color="#999", linewidth=1, label="perfectly calibrated")
        for colour, (name, (confidence, accuracy)) in zip(_colours(), curves.items()):
            axes.plot(confidence, accuracy, marker="o", markersize=4, color=colour, linewidth=1.6, label=name)
        _unit_square(axes, "Predicted probability (top class)", "Observed frequency (share correct)", title)
        axes.legend(loc="upper left", fontsize=7.5)
        return _svg(figure)


def _unit_square(axes, xlabel: str, ylabel: str, title: str) -> None:
    """Both axes from 0 to 1, square, titled: ROC curves and reliability diagrams."""
    axes.set_xlim(-0.01, 1.01)
    axes.set_ylim(-0.01, 1.01)
    axes.set_aspect("equal")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    if title:
        axes.set_title(title, loc="left", fontsize=10, fontweight="bold")


@drawn_once
def confusion_chart(matrix: Sequence[Sequence[int]], class_names: Sequence[str], *, title: str = "") -> str:
    """A confusion matrix (rows: true class, columns: predicted) with its counts written in."""
    k = len(class_names)
    with _canvas(
        STYLE | {"axes.grid": False}, figsize=(1.9 + 0.85 * k, 1.5 + 0.75 * k), layout="constrained"
    ) as figure:
        axes = figure.subplots()
        values = [[int(v) for v in row] for row in matrix]
        top = max((v for row in values for v in row), default=0)
        axes.imshow(values, cmap="Blues", vmin=0, vmax=max(top, 1))
        axes.set_xticks(range(k), list(class_names), rotation=30, ha="right")
        axes.set_yticks(range(k), list(class_names))
        axes.set_xlabel("Predicted class")
        axes.set_ylabel("True class (gold)")
        for row, counts in enumerate(values):
            for column, value in enumerate(counts):
                colour = "white" if top and value > top / 2 else "black"
                axes.text(column, row, str(value), ha="center", va="center", color=colour, fontsize=10)
        if title:
            axes.set_title(title, loc="left", fontsize=10, fontweight="bold")
        return _svg(figure)


@drawn_once
def grouped_bars(
    groups: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    intervals: Mapping[str, Sequence[tuple[float, float] | None]] | None = None,
    *,
    title: str = "",
    xlabel: str,
    ylabel: str,
    ylim: tuple[float, float] = (0.0, 1.0),
) -> str:
    """Side-by-side bars: one group per x label (e.g. a class), one bar per series (e.g. the candidate
    and the champion), each with its interval as a whisker where one is known. A missing value
    leaves its place empty rather than drawing a zero that reads as a measurement."""
    with _canvas(
        STYLE | {"axes.grid.axis": "y"}, figsize=(max(3.6, 1.2 + 1.25 * len(groups)), 3.3), layout="constrained"
    ) as figure:
        axes = figure.subplots()
        width = 0.8 / max(len(series), 1)
        for index, (colour, (name, values)) in enumerate(zip(_colours(), series.items())):
            spans = (intervals or {}).get(name) or [None] * len(values)
            along = [g - 0.4 + width * (index + 0.5) for g in range(len(groups))]
            known = [(x, v, span) for x, v, span in zip(along, values, spans) if v is not None]
            axes.bar([x for x, _, _ in known], [v for _, v, _ in known], width * 0.92, color=colour, label=name)
            whiskers = [(x, v, span) for x, v, span in known if span is not None]
            if whiskers:
                axes.errorbar(
                    [x for x, _, _ in whiskers],
                    [v for _, v, _ in whiskers],
                    yerr=[[max(v - s[0], 0) for _, v, s in whiskers], [max(s[1] - v, 0) for _, v, s in whiskers]],
                    fmt="none",
                    ecolor="#222",
                    elinewidth=1,
                    capsize=3,
                )
        axes.set_xticks(range(len(groups)), list(groups))
        axes.set_ylim(*ylim)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        if title:
            axes.set_title(title, loc="left", fontsize=10, fontweight="bold")
        if series:
            axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=min(len(series), 3), fontsize=8)
        return _svg(figure)


def stacked_bars(per_day: Mapping[str, Mapping[str, int]], days: Sequence[str]) -> str:
    """Labels per day, stacked by doctor (the activity page), as SVG text."""
    with _canvas(figsize=(9, 2.8), dpi=100) as figure:
        return _stacked_bars(figure, per_day, days)


def _stacked_bars(figure: Figure, per_day: Mapping[str, Mapping[str, int]], days: Sequence[str]) -> str:
    axes = figure.add_subplot()
    doctors = sorted({name for counts in per_day.values() for name in counts})
    bottom = [0] * len(days)
    for doctor in doctors:
        heights = [per_day.get(day, {}).get(doctor, 0) for day in days]
        axes.bar(range(len(days)), heights, bottom=bottom, label=doctor, width=0.8)
        bottom = [b + h for b, h in zip(bottom, heights)]
    step = max(1, len(days) // 10)
    axes.set_xticks(range(0, len(days), step), [days[i][5:] for i in range(0, len(days), step)])
    axes.set_xlabel("Day (month-day)")
    axes.set_ylabel("Labels")
    axes.spines[["top", "right"]].set_visible(False)
    if doctors:
        axes.legend(loc="upper left", fontsize="small", frameon=False, ncols=min(len(doctors), 4))
    figure.tight_layout()
    return _svg(figure)


def svg_data_uri(svg: str) -> str:
    """`data:image/svg+xml;base64,...` for an <img src>: the CSP allows data: images, and an SVG
    shown as an image runs no script."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _colours():
    while True:
        yield from COLOURS


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()
