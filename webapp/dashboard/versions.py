"""The model dashboard's data: every version's gold-set metrics, promotions and rollbacks, the
learning curve, and two versions side by side from their stored per-image gold probabilities."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from learning.metrics import (
    ReliabilityCurve,
    RocCurve,
    evaluate,
    reliability_curve,
    roc_curves,
)
from webapp.classes import catalog
from webapp.errors import Problem
from webapp.extensions import db
from webapp.models import AuditEvent, GateReport, GoldScore, GoldSnapshot, TrainingRun
from webapp.services import services

# per-class columns of the table; recall is sensitivity by definition, shown under both names
PER_CLASS = ("sensitivity", "specificity", "precision", "recall", "f1")
OVERALL = ("accuracy", "macro_auc", "ece")
LABELS = {
    "accuracy": "accuracy",
    "macro_auc": "macro AUC",
    "ece": "ECE (calibration error, lower is better)",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
}


@dataclass
class VersionMetrics:
    """One model version as the dashboard's table shows it: its latest gold-set measurement."""

    version: int
    aliases: list[str]
    metrics: dict | None  # EvaluationReport.to_dict() of the latest gate run that measured it
    role: str | None  # "candidate" or "champion": the side of the gate report that measured it
    gate_report: int | None
    gold_snapshot: str | None
    gold_size: int | None
    measured_at: str | None
    num_labels: int | None  # doctor labels the version was trained with (TrainingRun.num_labels)
    scored_snapshots: list[int] = field(default_factory=list)  # snapshots with per-image scores stored

    def value(self, metric: str, class_name: str | None = None) -> float | None:
        if not self.metrics:
            return None
        if class_name is None:
            found = self.metrics.get(metric)
        else:
            key = "sensitivity" if metric == "recall" else metric
            found = self.metrics.get("per_class", {}).get(class_name, {}).get(key)
        return None if found is None else float(found)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["per_class"] = {
            name: {metric: self.value(metric, name) for metric in PER_CLASS} for name in self.class_names()
        }
        data["overall"] = {metric: self.value(metric) for metric in OVERALL}
        data["n"] = (self.metrics or {}).get("n")
        data.pop("metrics")
        return data

    def class_names(self) -> list[str]:
        return list((self.metrics or {}).get("per_class", {}))


def version_metrics() -> list[VersionMetrics]:
    """Every registered version, oldest first, with the latest gate run that measured it (as the
    candidate, or as the champion a later candidate was compared with)."""
    registry = services().registry
    latest: dict[int, tuple[GateReport, str]] = {}
    for report in db.session.execute(db.select(GateReport).order_by(GateReport.id)).scalars():
        latest[report.model_version] = (report, "candidate")
        if report.champion_version is not None and report.champion_metrics:
            latest[report.champion_version] = (report, "champion")
    labels = dict(
        db.session.execute(
            db.select(TrainingRun.model_version, TrainingRun.num_labels).where(TrainingRun.model_version.is_not(None))
        ).all()
    )
    scored: dict[int, list[int]] = {}
    for version, snapshot_id in db.session.execute(
        db.select(GoldScore.model_version, GoldScore.snapshot_id).distinct()
    ).all():
        scored.setdefault(version, []).append(snapshot_id)
    rows = []
    for info in sorted(registry.versions(), key=lambda i: i.version):
        report, role = latest.get(info.version, (None, None))
        metrics = None
        if report is not None:
            metrics = report.candidate_metrics if role == "candidate" else report.champion_metrics
            if not metrics or not metrics.get("n"):
                metrics = None  # an empty gold set measured nothing
        rows.append(
            VersionMetrics(
                version=info.version,
                aliases=sorted(info.aliases),
                metrics=metrics,
                role=role,
                gate_report=report.id if report is not None else None,
                gold_snapshot=report.snapshot.content_hash[:12] if report is not None else None,
                gold_size=report.snapshot.size if report is not None else None,
                measured_at=report.created_at.isoformat() + "Z" if report is not None else None,
                num_labels=labels.get(info.version),
                scored_snapshots=sorted(scored.get(info.version, [])),
            )
        )
    return rows


@dataclass(frozen=True)
class ModelEvent:
    """A promotion or a rollback, as the charts mark it."""

    kind: str  # promotion | rollback
    version: int | None  # the champion after the change
    from_version: int | None
    actor: str
    reason: str | None
    at: str
    automatic: bool

    @property
    def marked_version(self) -> int | None:
        """Where a chart marks it: a promotion at the version promoted, a rollback at the version rolled back."""
        return self.from_version if self.kind == "rollback" else self.version

    @property
    def text(self) -> str:
        if self.kind == "rollback":
            return f"v{self.from_version} rolled back to v{self.version}"
        return f"v{self.version} promoted"


def model_events() -> list[ModelEvent]:
    """Completed promotions and rollbacks, oldest first (the 'started' intents and abandoned ones are not changes)."""
    events = db.session.execute(
        db.select(AuditEvent).where(AuditEvent.kind.in_(("promotion", "rollback"))).order_by(AuditEvent.id)
    ).scalars()
    return [
        ModelEvent(
            e.kind, e.model_version, e.from_version, e.actor_name, e.reason, e.created_at.isoformat() + "Z", e.automatic
        )
        for e in events
        if (e.details or {}).get("phase") not in ("started", "abandoned")
    ]


def learning_curve(rows: list[VersionMetrics]) -> list[dict]:
    """Gold-set macro AUC and accuracy against the doctor labels each version was trained with."""
    return [
        {
            "version": row.version,
            "num_labels": row.num_labels,
            "accuracy": row.value("accuracy"),
            "macro_auc": row.value("macro_auc"),
        }
        for row in rows
        if row.num_labels is not None and row.metrics
    ]


def metrics_document() -> dict:
    """What GET /api/v1/models/metrics answers: the dashboard's data for scripts."""
    rows = version_metrics()
    return {
        "versions": [row.to_dict() for row in rows],
        "events": [asdict(e) | {"marked_version": e.marked_version} for e in model_events()],
        "learning_curve": learning_curve(rows),
        "note": "recall is sensitivity; ECE is the top-class expected calibration error over 10 equal-width bins",
    }


# --- two versions side by side ---------------------------------------------------------------


@dataclass
class ScoredVersion:
    """One version's per-image gold probabilities on one snapshot, and the curves drawn from them."""

    version: int
    snapshot: str | None  # content hash, short
    n: int
    roc: dict[str, RocCurve]
    reliability: ReliabilityCurve | None
    confusion: list[list[int]] | None
    confusion_classes: list[str]
    note: str | None = None


@dataclass
class Comparison:
    a: ScoredVersion
    b: ScoredVersion
    class_names: list[str]
    same_snapshot: bool
    notes: list[str]


def parse_version(value: str | None, which: str) -> int:
    """A version from the query string: a clear 400 for text that is not one."""
    if value is None or not value.strip():
        raise Problem(f"Choose a model version for {which}.", 400)
    value = value.strip().removeprefix("v")
    if not value.isdigit() or len(value) > 9:
        raise Problem(f"{which} must be a model version number, like 3.", 400)
    return int(value)


def compare(a: int, b: int) -> Comparison:
    """Versions a and b on the latest gold snapshot both were scored on (or each on its own latest)."""
    known = {info.version for info in services().registry.versions()}
    for version in (a, b):
        if version not in known:
            raise Problem(f"There is no model version {version}.", 404)
    if a == b:
        raise Problem("Choose two different versions to compare.", 400)
    snapshots = {version: _scored_snapshots(version) for version in (a, b)}
    common = sorted(set(snapshots[a]) & set(snapshots[b]))
    notes = []
    if common:
        chosen: dict[int, int | None] = {a: common[-1], b: common[-1]}
    else:
        chosen = {version: (found[-1] if found else None) for version, found in snapshots.items()}
        if all(chosen.values()):
            notes.append("The two versions were never scored on the same gold snapshot: each is shown on its latest.")
    names = services().class_names
    return Comparison(
        a=_scored(a, chosen[a], names),
        b=_scored(b, chosen[b], names),
        class_names=names,
        same_snapshot=bool(common),
        notes=notes,
    )


def _scored_snapshots(version: int) -> list[int]:
    return list(
        db.session.execute(
            db.select(GoldScore.snapshot_id).filter_by(model_version=version).distinct().order_by(GoldScore.snapshot_id)
        ).scalars()
    )


def _scored(version: int, snapshot_id: int | None, names: list[str]) -> ScoredVersion:
    if snapshot_id is None:
        return _unscored(version)
    renamed = catalog.aliases()
    rows = db.session.execute(
        db.select(GoldScore).filter_by(model_version=version, snapshot_id=snapshot_id).order_by(GoldScore.image_id)
    ).scalars()
    truth, probabilities = [], []
    for row in rows:
        stored = {renamed.get(name, name): p for name, p in row.probabilities.items()}
        label = renamed.get(row.true_label, row.true_label)
        if label not in names:
            continue
        truth.append(names.index(label))
        probabilities.append([float(stored.get(name, 0.0)) for name in names])
    y, p = np.array(truth, dtype=int), np.array(probabilities, dtype=np.float64).reshape(len(truth), len(names))
    snapshot = db.session.get(GoldSnapshot, snapshot_id)
    return ScoredVersion(
        version=version,
        snapshot=snapshot.content_hash[:12] if snapshot else None,
        n=len(y),
        roc=roc_curves(y, p, names),
        reliability=reliability_curve(y, p),
        confusion=evaluate(y, p, names).confusion,
        confusion_classes=names,
    )


def _unscored(version: int) -> ScoredVersion:
    """A version gated before per-image scores were stored: its confusion matrix from the gate report only."""
    row = next((r for r in version_metrics() if r.version == version), None)
    metrics = row.metrics if row else None
    note = (
        f"v{version} was measured before per-image gold scores were stored: no ROC curve or reliability diagram. "
        "Running the gate again with it as champion or candidate stores them."
        if metrics
        else f"v{version} has not been measured on the gold set yet."
    )
    return ScoredVersion(
        version=version,
        snapshot=row.gold_snapshot if row else None,
        n=int(metrics["n"]) if metrics else 0,
        roc={},
        reliability=None,
        confusion=metrics["confusion"] if metrics else None,
        confusion_classes=list(metrics["per_class"]) if metrics else [],
        note=note,
    )
