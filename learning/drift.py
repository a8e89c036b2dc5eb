"""Drift statistics: a group of images against a model's training data (population stability index,
two-sample tests with Holm correction). Pure numpy/scipy/scikit-learn: rows in, verdicts out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

# SciPy loads inside the statistical tests below, not with the pages that import this module (1 s of
# every `medal` command's start)

# a share of exactly 0 makes PSI infinite; one in ten thousand stands for "almost never"
_FLOOR = 1e-4


def intensity_histogram(pixels: np.ndarray, bins: int = 16) -> np.ndarray:
    """Share of an 8-bit grayscale image's pixels in `bins` equal bins over 0..255 (sums to 1)."""
    counts, _ = np.histogram(np.asarray(pixels).ravel(), bins=bins, range=(0, 256))
    total = counts.sum()
    return counts / total if total else np.full(bins, 1.0 / bins)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two share vectors over the same bins:
    sum((a - e) * ln(a / e)). 0 means identical; 0.1 to 0.25 a moderate shift; above 0.25 a large one."""
    e = np.clip(np.asarray(expected, dtype=np.float64), _FLOOR, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), _FLOOR, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error), in the input order: a group runs
    a dozen tests, and an uncorrected 0.01 would flag one group in ten by chance."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


@dataclass(frozen=True)
class DriftPolicy:
    psi_alert: float = 0.25
    p_value: float = 0.01  # family-wise, per group, after Holm correction
    min_images: int = 30


@dataclass
class Sample:
    """Per-image statistics of a set of images under one model version."""

    histograms: np.ndarray  # n x bins, each row sums to 1
    widths: np.ndarray
    heights: np.ndarray
    projections: np.ndarray  # n x k: the embedding in the reference's principal components
    predicted: list[str]
    confidence: np.ndarray

    def __len__(self) -> int:
        return len(self.confidence)

    @classmethod
    def of(cls, rows: Sequence[dict]) -> Sample:
        """From dicts with histogram, width, height, projection, predicted_class and confidence."""
        bins = len(rows[0]["histogram"]) if rows else 0
        k = len(rows[0]["projection"]) if rows else 0
        return cls(
            np.asarray([r["histogram"] for r in rows], dtype=np.float64).reshape(len(rows), bins),
            np.asarray([r["width"] for r in rows], dtype=np.float64),
            np.asarray([r["height"] for r in rows], dtype=np.float64),
            np.asarray([r["projection"] for r in rows], dtype=np.float64).reshape(len(rows), k),
            [r["predicted_class"] for r in rows],
            np.asarray([r["confidence"] for r in rows], dtype=np.float64),
        )


@dataclass
class Check:
    """One comparison: which feature, which test, its value against its threshold."""

    feature: str
    test: str  # psi | ks_2samp | chi2_contingency | fisher_exact
    value: float  # the PSI, or the Holm-adjusted p-value
    threshold: float
    statistic: float | None = None  # KS D, chi-square, odds ratio
    p_value_raw: float | None = None
    drifting: bool = False
    note: str = ""

    def to_dict(self) -> dict:
        out = {
            "feature": self.feature,
            "test": self.test,
            "value": _round(self.value),
            "threshold": self.threshold,
            "drifting": self.drifting,
        }
        if self.statistic is not None:
            out["statistic"] = _round(self.statistic)
        if self.p_value_raw is not None:
            out["p_value_raw"] = _round(self.p_value_raw)
        if self.note:
            out["note"] = self.note
        return out


def _round(value: float) -> float | None:
    """Four significant digits; None (JSON null) where a test could not run, never NaN, which is not JSON."""
    return float(f"{value:.4g}") if np.isfinite(value) else None


def ks(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov: (D, p). Constant and equal samples give (0, 1)."""
    if np.ptp(np.concatenate([reference, current])) == 0:
        return 0.0, 1.0
    from scipy import stats

    result = stats.ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def class_shares_test(reference: Sequence[str], current: Sequence[str]) -> tuple[float, float]:
    """Chi-square test of predicted-class counts, group against reference: (chi2, p)."""
    names = sorted(set(reference) | set(current))
    table = np.asarray([[list(reference).count(n) for n in names], [list(current).count(n) for n in names]])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    from scipy import stats

    result = stats.chi2_contingency(table)
    return float(result.statistic), float(result.pvalue)


def shares(labels: Sequence[str], names: Sequence[str]) -> dict[str, float]:
    total = len(labels) or 1
    return {name: round(list(labels).count(name) / total, 4) for name in names}


def compare(reference: Sample, current: Sample, policy: DriftPolicy) -> list[Check]:
    """Every input and prediction check of one group against the reference. Distribution tests
    are corrected together (Holm); the intensity histogram is judged by its PSI."""
    checks = [
        Check(
            "intensity_histogram",
            "psi",
            psi(reference.histograms.mean(axis=0), current.histograms.mean(axis=0)),
            policy.psi_alert,
        )
    ]
    checks[0].drifting = checks[0].value >= policy.psi_alert
    tested: list[Check] = []
    means = np.arange(reference.histograms.shape[1]) + 0.5  # bin centres, in bins
    ref_mean, cur_mean = reference.histograms @ means, current.histograms @ means
    for feature, ref, cur in [
        ("mean_intensity", ref_mean, cur_mean),
        ("width", reference.widths, current.widths),
        ("height", reference.heights, current.heights),
        *[
            (f"embedding_pc{i + 1}", reference.projections[:, i], current.projections[:, i])
            for i in range(reference.projections.shape[1])
        ],
        ("confidence", reference.confidence, current.confidence),
    ]:
        d, p = ks(ref, cur)
        tested.append(Check(feature, "ks_2samp", p, policy.p_value, statistic=d, p_value_raw=p))
    chi2, p = class_shares_test(reference.predicted, current.predicted)
    tested.append(Check("predicted_class", "chi2_contingency", p, policy.p_value, statistic=chi2, p_value_raw=p))
    for check, adjusted in zip(tested, holm([c.value for c in tested])):
        check.value = adjusted
        check.drifting = adjusted < policy.p_value
    return checks + tested


def agreement_test(
    agreed: int, total: int, agreed_rest: int, total_rest: int, policy: DriftPolicy, tests_in_group: int = 1
) -> Check:
    """Model-doctor agreement in a group against all other reviewed images (Fisher's exact test;
    training images have no doctor answer to compare with). Only lower agreement counts as drift;
    `tests_in_group` Bonferroni-corrects it alongside the group's other tests."""
    if total < policy.min_images:
        return Check("agreement", "fisher_exact", float("nan"), policy.p_value, note="too few reviewed images")
    if total_rest == 0:
        return Check("agreement", "fisher_exact", 1.0, policy.p_value, note="no other reviewed images")
    table = [[agreed, total - agreed], [agreed_rest, total_rest - agreed_rest]]
    from scipy import stats

    odds, p = stats.fisher_exact(table, alternative="less")
    adjusted = min(1.0, float(p) * max(1, tests_in_group))
    return Check(
        "agreement",
        "fisher_exact",
        adjusted,
        policy.p_value,
        statistic=float(odds),
        p_value_raw=float(p),
        drifting=adjusted < policy.p_value,
    )


@dataclass
class Projection:
    """PCA of the reference's embeddings: the current images are projected onto the same axes."""

    mean: np.ndarray
    components: np.ndarray  # k x dim
    explained: list[float] = field(default_factory=list)

    @classmethod
    def fit(cls, embeddings: np.ndarray, k: int) -> Projection:
        from sklearn.decomposition import PCA

        k = max(0, min(k, embeddings.shape[0] - 1, embeddings.shape[1]))
        if k == 0:
            return cls(embeddings.mean(axis=0), np.zeros((0, embeddings.shape[1])), [])
        pca = PCA(n_components=k, random_state=0).fit(embeddings)
        return cls(pca.mean_, pca.components_, [float(x) for x in pca.explained_variance_ratio_])

    def apply(self, embeddings: np.ndarray) -> np.ndarray:
        return (np.asarray(embeddings, dtype=np.float64) - self.mean) @ self.components.T

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "components": self.components.tolist(), "explained": self.explained}

    @classmethod
    def from_dict(cls, data: dict) -> Projection:
        mean = np.asarray(data["mean"], dtype=np.float64)
        components = np.asarray(data["components"], dtype=np.float64).reshape(-1, len(mean))
        return cls(mean, components, list(data.get("explained", [])))


def age_band(age: int | None, bands: Sequence[tuple[int, int | None]]) -> str:
    """The configured band an age falls in ("0-5", "65+"), or "unknown"."""
    if age is None:
        return "unknown"
    for low, high in bands:
        if age >= low and (high is None or age <= high):
            return f"{low}+" if high is None else f"{low}-{high}"
    return "unknown"
