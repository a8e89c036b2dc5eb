"""Intervals on gold-set metrics: a paired bootstrap of two models on the same images, and McNemar's test.

Both models are scored on the same resamples, so the interval of their difference is narrower than
the two intervals side by side would suggest: an image both get right or both get wrong moves
neither. Images of one patient are drawn together, so one patient's films count as one witness.
Every resample is a vector of counts per image, and every metric a weighted sum over images, so
2,000 resamples of a few hundred images are a handful of matrix products."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from learning.metrics import PER_CLASS_METRICS, metric_key

OVERALL_METRICS = ("accuracy", "macro_auc", "ece")
# per class beside learning.metrics' own: Youden's J (sensitivity + specificity - 1), whose paired
# interval tells the gate a class called less often but as well (a trade) from a class found worse
PAIRED_METRICS = (*PER_CLASS_METRICS, "youden")


@dataclass(frozen=True)
class Interval:
    """A metric on the gold set as it is, and the central `confidence` share of its resamples."""

    value: float | None
    low: float | None = None
    high: float | None = None

    @property
    def known(self) -> bool:
        return self.value is not None and self.low is not None and self.high is not None

    def to_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class MetricComparison:
    """One metric for the candidate and the champion, and their difference on the same resamples."""

    candidate: Interval
    champion: Interval | None = None
    difference: Interval | None = None  # candidate - champion
    mcnemar_p: float | None = None  # exact two-sided, for right/wrong calls per image
    discordant: tuple[int, int] | None = None  # images only the candidate / only the champion got right
    support: int = 0  # images the metric rests on (a class's films for its sensitivity)
    patients: int = 0  # distinct patients among them

    def to_dict(self) -> dict:
        return {
            "candidate": self.candidate.to_dict(),
            "champion": self.champion.to_dict() if self.champion else None,
            "difference": self.difference.to_dict() if self.difference else None,
            "mcnemar_p": self.mcnemar_p,
            "discordant": list(self.discordant) if self.discordant else None,
            "support": self.support,
            "patients": self.patients,
        }


@dataclass(frozen=True)
class Comparison:
    """Every gate metric with its intervals on one gold set (and on each site's part of it)."""

    n: int
    patients: int
    resamples: int
    confidence: float
    seed: int
    metrics: dict[str, MetricComparison]
    per_site: dict[str, Comparison] = field(default_factory=dict)

    @property
    def unit(self) -> str:
        """What one draw of the bootstrap takes: a patient's films together, or one image."""
        return "patient" if self.patients < self.n else "image"

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "patients": self.patients,
            "unit": self.unit,
            "resamples": self.resamples,
            "confidence": self.confidence,
            "seed": self.seed,
            "metrics": {key: value.to_dict() for key, value in self.metrics.items()},
            "per_site": {site: value.to_dict() for site, value in self.per_site.items()},
        }


def paired_bootstrap(
    truth: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray | None,
    class_names: list[str],
    groups: Sequence[str] | None = None,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    n_bins: int = 10,
) -> Comparison:
    """Accuracy, macro AUC, ECE and every per-class metric (learning.metrics.evaluate's definitions)
    for `candidate` and `champion` probabilities on the gold images `truth`, each with a percentile
    interval, plus the interval of their difference. `groups` names each image's patient: a
    resample draws patients with replacement and takes all their images. Seeded: the same inputs
    always give the same intervals."""
    truth = np.asarray(truth, dtype=int)
    n = len(truth)
    if not n:
        return Comparison(0, 0, resamples, confidence, seed, {})
    group_index = _patients(groups, n)
    weights = np.vstack([np.ones((1, n)), resample_counts(group_index, resamples, seed)])
    models = [candidate] if champion is None else [candidate, champion]
    scored = [np.asarray(probabilities, dtype=np.float64) for probabilities in models]
    measured = [weighted_metrics(truth, probabilities, weights, class_names, n_bins) for probabilities in scored]
    calls = [_calls(truth, probabilities, class_names) for probabilities in scored]
    rests_on = _rows(truth, class_names)
    tail = (1.0 - confidence) / 2
    metrics = {}
    for key, values in measured[0].items():
        theirs = difference = p_value = discordant = None
        if champion is not None:
            theirs = _interval(measured[1][key], tail)
            difference = _interval(values - measured[1][key], tail)
            if key in calls[0]:
                discordant = _discordant(calls[0][key], calls[1][key], rests_on[key])
                p_value = mcnemar_exact(*discordant)
        rows = rests_on[key]
        metrics[key] = MetricComparison(
            _interval(values, tail),
            theirs,
            difference,
            p_value,
            discordant,
            int(rows.sum()),
            len(np.unique(group_index[rows])),
        )
    return Comparison(n, int(group_index.max()) + 1, resamples, confidence, seed, metrics)


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar test on the discordant pairs: under no difference each one is a
    fair coin, so the p-value is twice the binomial tail of the smaller count (at most 1)."""
    total = only_first + only_second
    if total == 0:
        return 1.0
    tail = sum(math.comb(total, i) for i in range(min(only_first, only_second) + 1))
    return min(1.0, 2 * tail / 2**total)


def _patients(groups: Sequence[str] | None, n: int) -> np.ndarray:
    """Each image's patient as an index 0..patients-1 (every image its own without groups)."""
    if groups is None:
        return np.arange(n)
    return np.unique(np.asarray(list(groups), dtype=str), return_inverse=True)[1].reshape(-1)


def resample_counts(group_index: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """(resamples, images): how often each image is in each resample, its patient drawn with
    replacement as many times as there are patients."""
    groups = int(group_index.max()) + 1
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, groups, size=(resamples, groups))
    offsets = (np.arange(resamples) * groups)[:, None]
    counts = np.bincount((drawn + offsets).ravel(), minlength=resamples * groups).reshape(resamples, groups)
    return counts[:, group_index].astype(np.float64)


def weighted_metrics(
    truth: np.ndarray, probabilities: np.ndarray, weights: np.ndarray, class_names: list[str], n_bins: int = 10
) -> dict[str, np.ndarray]:
    """Every metric of learning.metrics.evaluate once per row of `weights` (how often each image
    counts), in a few matrix products; NaN where a row leaves it undefined (no film of a class)."""
    k = len(class_names)
    predicted = probabilities.argmax(axis=1) if len(truth) else np.zeros(0, dtype=int)
    confidence = probabilities.max(axis=1) if len(truth) else np.zeros(0)
    correct = (predicted == truth).astype(np.float64)
    # the bins of torchmetrics' calibration error (learning.metrics.expected_calibration_error):
    # float32 confidences, a last bin for exactly 1.0
    import torch  # here, not at the top: the settings import this module through the gate's policy

    boundaries = torch.linspace(0, 1, n_bins + 1, dtype=torch.float32).numpy()
    bins = np.searchsorted(boundaries, confidence.astype(np.float32), side="right") - 1
    in_bin = np.eye(n_bins + 1)[bins]
    positive = truth[:, None] == np.arange(k)
    called = predicted[:, None] == np.arange(k)
    parts = [correct[:, None], in_bin * correct[:, None], in_bin * confidence[:, None]]
    parts += [positive, positive & called, called, ~positive & ~called]
    sums = weights @ np.hstack(parts).astype(np.float64)
    widths = np.cumsum([p.shape[1] for p in parts])[:-1]
    right, right_per_bin, confidence_per_bin, pos, tp, pp, tn = np.split(sums, widths, axis=1)
    total, right = weights.sum(axis=1), right[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {"accuracy": right / total, "ece": np.abs(right_per_bin - confidence_per_bin).sum(axis=1) / total}
        aucs = _aucs(weights, probabilities, truth, positive, pos, total)
        # scikit-learn's macro AUC: the positive class alone for two classes, else the mean one-against-rest
        out["macro_auc"] = aucs[:, 1] if k == 2 else aucs.mean(axis=1)
        per_class = {
            "sensitivity": tp / pos,
            "specificity": tn / (total[:, None] - pos),
            "precision": tp / pp,
            "f1": 2 * tp / (pos + pp),
        }
        per_class["youden"] = per_class["sensitivity"] + per_class["specificity"] - 1
    for index, name in enumerate(class_names):
        for metric in PAIRED_METRICS:
            out[metric_key(metric, name)] = per_class[metric][:, index]
    return out


def _aucs(
    weights: np.ndarray,
    probabilities: np.ndarray,
    truth: np.ndarray,
    positive: np.ndarray,
    positives: np.ndarray,
    total: np.ndarray,
) -> np.ndarray:
    """One-against-rest ROC AUC of every class per row of weights: the weighted share of (positive,
    negative) pairs ranked right, ties counting half (scikit-learn's roc_auc_score with counts).
    One matrix product for all classes: each image is the positive of its own class only."""
    own = probabilities[np.arange(len(truth)), truth]  # each image's score for its own class
    scores = probabilities[:, truth]  # scores[j, i]: image j's score for image i's class
    other = truth[:, None] != truth[None, :]
    beaten = other * ((scores < own[None, :]) + 0.5 * (scores == own[None, :]))  # j a negative ranked below i
    # float32 is exact here (counts and halves, sums below 2**24 for gold sets under ~2,900 images) and
    # twice as fast as float64
    w = weights.astype(np.float32)
    ranked_right = (((w @ beaten.astype(np.float32)) * w) @ positive.astype(np.float32)).astype(np.float64)
    pairs = positives * (total[:, None] - positives)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pairs > 0, ranked_right / pairs, np.nan)


def _interval(values: np.ndarray, tail: float) -> Interval:
    point, resampled = values[0], values[1:]
    resampled = resampled[~np.isnan(resampled)]
    if np.isnan(point):
        return Interval(None)
    if not len(resampled):
        return Interval(float(point))
    low, high = np.quantile(resampled, [tail, 1.0 - tail])
    return Interval(float(point), float(low), float(high))


def _rows(truth: np.ndarray, class_names: list[str]) -> dict[str, np.ndarray]:
    """The gold images each metric rests on: all of them, or a class's films for its per-class metrics
    (its other images for specificity, all of them for Youden's J)."""
    everything = np.ones(len(truth), dtype=bool)
    rows = dict.fromkeys(OVERALL_METRICS, everything)
    for index, name in enumerate(class_names):
        for metric in PER_CLASS_METRICS:
            rows[metric_key(metric, name)] = truth != index if metric == "specificity" else truth == index
        rows[metric_key("youden", name)] = everything
    return rows


def _calls(truth: np.ndarray, probabilities: np.ndarray, class_names: list[str]) -> dict[str, np.ndarray]:
    """Per image, whether the call a paired-call metric counts was right (read on the metric's rows)."""
    predicted = probabilities.argmax(axis=1) if len(truth) else np.zeros(0, dtype=int)
    calls = {"accuracy": predicted == truth}
    for index, name in enumerate(class_names):
        calls[metric_key("sensitivity", name)] = predicted == index
        calls[metric_key("specificity", name)] = predicted != index
    return calls


def _discordant(mine: np.ndarray, theirs: np.ndarray, rows: np.ndarray) -> tuple[int, int]:
    return int((mine & ~theirs & rows).sum()), int((~mine & theirs & rows).sum())
