"""Classification metrics for the validation gate and training reports."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

# scikit-learn, torch and torchmetrics load inside the functions that use them: the settings import
# this module (through the gate's policy), and torchmetrics alone took 4 of the 12 s every `medal`
# command spent starting (docs/benchmarks.md, "Start-up")


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


def expected_calibration_error(y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = 10) -> float:
    """Top-class confidence against accuracy over equal-width bins, weighted by bin size (torchmetrics)."""
    import torch
    from torchmetrics.functional.classification import multiclass_calibration_error

    y_true = np.asarray(y_true, dtype=int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if len(y_true) == 0:
        return 0.0
    return float(
        multiclass_calibration_error(
            torch.as_tensor(probabilities, dtype=torch.float64),
            torch.as_tensor(y_true, dtype=torch.long),
            num_classes=probabilities.shape[1],
            n_bins=n_bins,
            norm="l1",
        )
    )


def evaluate(
    y_true: np.ndarray, probabilities: np.ndarray, class_names: list[str], n_bins: int = 10
) -> EvaluationReport:
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
        recall_score,
        roc_auc_score,
    )

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
    labels = list(range(k))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, predicted, labels=labels, average=None, zero_division=0
    )
    per_class = {}
    for index, name in enumerate(class_names):
        # specificity of a class is the recall of "not this class", one against the rest
        negatives = y_true != index
        specificity = recall_score(negatives, predicted != index, zero_division=0) if negatives.any() else 0.0
        per_class[name] = ClassMetrics(
            sensitivity=float(recall[index]),
            specificity=float(specificity),
            precision=float(precision[index]),
            f1=float(f1[index]),
            support=int(support[index]),
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
        accuracy=float(accuracy_score(y_true, predicted)),
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


@dataclass(frozen=True)
class RocCurve:
    """One class against the rest: false and true positive rates at each threshold, and its AUC."""

    false_positive_rate: list[float]
    true_positive_rate: list[float]
    auc: float


def roc_curves(y_true: np.ndarray, probabilities: np.ndarray, class_names: list[str]) -> dict[str, RocCurve]:
    """One-vs-rest ROC curves (scikit-learn) for every class that has both positives and negatives."""
    from sklearn.metrics import roc_auc_score, roc_curve

    y_true = np.asarray(y_true, dtype=int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    curves = {}
    for index, name in enumerate(class_names):
        positives = y_true == index
        if not positives.any() or positives.all():
            continue  # a curve needs both kinds of example
        fpr, tpr, _ = roc_curve(positives, probabilities[:, index])
        auc = roc_auc_score(positives, probabilities[:, index])
        curves[name] = RocCurve([float(v) for v in fpr], [float(v) for v in tpr], float(auc))
    return curves


@dataclass(frozen=True)
class ReliabilityCurve:
    """Top-class confidence against accuracy per non-empty equal-width bin (the reliability diagram)."""

    mean_confidence: list[float]
    accuracy: list[float]
    counts: list[int]
    ece: float


def reliability_curve(y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = 10) -> ReliabilityCurve:
    """scikit-learn's calibration_curve on "was the top class right" against the top-class confidence,
    the same reading of calibration as the ECE."""
    from sklearn.calibration import calibration_curve

    y_true = np.asarray(y_true, dtype=int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if len(y_true) == 0:
        return ReliabilityCurve([], [], [], 0.0)
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == y_true).astype(int)
    accuracy, mean_confidence = calibration_curve(correct, confidence, n_bins=n_bins, strategy="uniform")
    # the bins calibration_curve uses (searchsorted on the inner edges), so counts line up with its points
    counts = np.bincount(np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], confidence), minlength=n_bins)
    return ReliabilityCurve(
        [float(v) for v in mean_confidence],
        [float(v) for v in accuracy],
        [int(c) for c in counts if c],
        expected_calibration_error(y_true, probabilities, n_bins),
    )
