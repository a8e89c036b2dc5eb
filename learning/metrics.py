"""Classification metrics for the validation gate and training reports."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score


@dataclass(frozen=True)
class ClassMetrics:
    sensitivity: float  # recall of the class
    specificity: float
    precision: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvaluationReport:
    n: int
    accuracy: float
    macro_auc: float | None  # None when a class is absent from y_true
    ece: float
    per_class: dict[str, ClassMetrics]
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-safe, nested: what the gate compares and the database stores."""
        return asdict(self)


PER_CLASS_METRICS = ("sensitivity", "specificity", "precision", "f1")


def metric_key(metric: str, class_name: str) -> str:
    """The one spelling of a per-class metric's flat key (MLflow, gate checks, the assistant)."""
    return f"{metric}_{class_name.replace(' ', '_')}"


def flat_metrics(report: EvaluationReport | dict) -> dict[str, float]:
    """Flat numeric keys for MLflow: accuracy, macro_auc (when defined), ece, n, and
    metric_key(metric, class) for every per-class metric."""
    data = report.to_dict() if isinstance(report, EvaluationReport) else report
    out = {"accuracy": float(data["accuracy"]), "ece": float(data["ece"]), "n": float(data["n"])}
    if data.get("macro_auc") is not None:
        out["macro_auc"] = float(data["macro_auc"])
    for name, values in data["per_class"].items():
        for metric in PER_CLASS_METRICS:
            out[metric_key(metric, name)] = float(values[metric])
    return out


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def expected_calibration_error(y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = 10) -> float:
    """Top-class confidence against accuracy over equal-width bins, weighted by bin size."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    error = 0.0
    for b in range(n_bins):
        members = bins == b
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def evaluate(
    y_true: np.ndarray, probabilities: np.ndarray, class_names: list[str], n_bins: int = 10
) -> EvaluationReport:
    y_true = np.asarray(y_true, dtype=int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    k = len(class_names)
    if len(y_true) == 0:
        empty = ClassMetrics(0.0, 0.0, 0.0, 0.0, 0)
        return EvaluationReport(
            n=0,
            accuracy=0.0,
            macro_auc=None,
            ece=0.0,
            per_class={name: empty for name in class_names},
            confusion=[[0] * k for _ in range(k)],
            notes=["No examples to evaluate."],
        )
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(y_true, predicted, labels=list(range(k)))
    total = int(matrix.sum())
    per_class = {}
    for index, name in enumerate(class_names):
        tp = matrix[index, index]
        fn = matrix[index].sum() - tp
        fp = matrix[:, index].sum() - tp
        tn = total - tp - fn - fp
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        per_class[name] = ClassMetrics(
            sensitivity=recall,
            specificity=_ratio(tn, tn + fp),
            precision=precision,
            f1=_ratio(2 * precision * recall, precision + recall),
            support=int(tp + fn),
        )
    notes, auc = [], None
    present = np.unique(y_true)
    if len(present) < k:
        missing = [class_names[i] for i in range(k) if i not in present]
        notes.append(f"No examples of {', '.join(missing)}: macro AUC is undefined.")
    elif k == 2:
        auc = float(roc_auc_score(y_true, probabilities[:, 1]))
    else:
        auc = float(roc_auc_score(y_true, probabilities, multi_class="ovr", average="macro", labels=list(range(k))))
    if auc is not None and math.isnan(auc):
        auc = None
    return EvaluationReport(
        n=total,
        accuracy=_ratio(np.trace(matrix), total),
        macro_auc=auc,
        ece=expected_calibration_error(y_true, probabilities, n_bins),
        per_class=per_class,
        confusion=matrix.tolist(),
        notes=notes,
    )


def confusion_matrix_figure(report: EvaluationReport | dict, class_names: list[str], title: str = ""):
    """A matplotlib figure of the confusion matrix, for the model version in MLflow."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    matrix = np.asarray(report["confusion"] if isinstance(report, dict) else report.confusion)
    figure = Figure(figsize=(1.6 + 0.9 * len(class_names), 1.2 + 0.9 * len(class_names)))
    axes = figure.subplots()
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(class_names)), class_names, rotation=30, ha="right")
    axes.set_yticks(range(len(class_names)), class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true (gold)")
    for (row, column), value in np.ndenumerate(matrix):
        axes.text(
            column, row, str(value), ha="center", va="center", color="white" if value > matrix.max() / 2 else "black"
        )
    if title:
        axes.set_title(title)
    figure.tight_layout()
    return figure
