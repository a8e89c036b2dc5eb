"""Active-learning query strategies, registered by name: probabilities in, picks and scores out."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PoolScores:
    """What scoring a pool produced for one model version."""

    probabilities: np.ndarray  # (n, c) softmax probabilities
    embeddings: np.ndarray | None = None  # (n, d) penultimate features, for batch_diverse
    mc_probabilities: np.ndarray | None = None  # (passes, n, c) MC-dropout samples, for mc_dropout


class _StoredProbabilities:
    """modAL's measures call `predict_proba`; the scores are already computed, so serve them."""

    def __init__(self, probabilities: np.ndarray):
        self.probabilities = probabilities

    def predict_proba(self, X, **_):
        return self.probabilities[np.asarray(X, dtype=int)]


def _modal(measure: str, probabilities: np.ndarray) -> np.ndarray:
    """modAL's `measure` (classifier_uncertainty, _margin or _entropy) over stored probabilities.
    modAL loads here, not at the top: the settings import this module to check a strategy's name,
    and modAL brings scikit-learn and SciPy (1 s of every `medal` command's start)."""
    from modAL import uncertainty

    index = np.arange(len(probabilities))
    return np.asarray(getattr(uncertainty, measure)(_StoredProbabilities(probabilities), index), dtype=np.float64)


ScoreFn = Callable[[PoolScores, np.random.Generator], np.ndarray]
_SCORES: dict[str, ScoreFn] = {}


def register(name: str):
    def add(fn: ScoreFn) -> ScoreFn:
        _SCORES[name] = fn
        return fn

    return add


def available() -> list[str]:
    return list(_SCORES) + ["batch_diverse", "cold_start"]


@register("random")
def _random(scores: PoolScores, rng: np.random.Generator) -> np.ndarray:
    return rng.random(len(scores.probabilities))


@register("least_confidence")
def _least_confidence(scores: PoolScores, rng: np.random.Generator) -> np.ndarray:
    return _modal("classifier_uncertainty", scores.probabilities)


@register("margin")
def _margin(scores: PoolScores, rng: np.random.Generator) -> np.ndarray:
    # modAL's margin is top-1 minus top-2: a small margin means ask first, so negate it
    return -_modal("classifier_margin", scores.probabilities)


@register("entropy")
def _entropy(scores: PoolScores, rng: np.random.Generator) -> np.ndarray:
    return _modal("classifier_entropy", scores.probabilities)


@register("mc_dropout")
def _mc_dropout(scores: PoolScores, rng: np.random.Generator) -> np.ndarray:
    """BALD: entropy of the mean minus the mean entropy, the passes' disagreement (epistemic)."""
    if scores.mc_probabilities is None:
        raise ValueError("mc_dropout needs MC-dropout passes (mc_probabilities).")
    samples = np.clip(scores.mc_probabilities, 1e-12, 1.0)
    mean = samples.mean(axis=0)
    entropy_of_mean = -(mean * np.log(mean)).sum(axis=1)
    mean_entropy = -(samples * np.log(samples)).sum(axis=2).mean(axis=0)
    return entropy_of_mean - mean_entropy


def score(strategy: str, scores: PoolScores, seed: int | None = 0) -> np.ndarray:
    """Per-image priority (higher asks first). batch_diverse ranks by its margin-based uncertainty;
    cold_start's picks come first, the rest by margin."""
    name = "margin" if strategy in ("batch_diverse", "cold_start") else strategy
    if name not in _SCORES:
        raise ValueError(f"Unknown strategy {strategy!r}; choose one of {', '.join(available())}.")
    return _SCORES[name](scores, np.random.default_rng(seed))


def select(
    strategy: str, scores: PoolScores, k: int, *, random_share: float = 0.0, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pick up to k pool indices, highest priority first; a share of them uniformly at random."""
    if strategy not in available():
        raise ValueError(f"Unknown strategy {strategy!r}; choose one of {', '.join(available())}.")
    n = len(scores.probabilities)
    k = min(int(k), n)
    if k <= 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    rng = np.random.default_rng(seed)
    n_random = int(round(k * min(max(random_share, 0.0), 1.0))) if strategy != "random" else 0
    values = score(strategy, scores, seed)
    if strategy == "batch_diverse":
        chosen = _diverse(scores, values, k - n_random)
    elif strategy == "cold_start":
        chosen = typical(scores, k - n_random, seed=seed or 0)
    else:
        chosen = np.argsort(-values, kind="stable")[: k - n_random]
    if n_random:
        rest = np.setdiff1d(np.arange(n), chosen)
        chosen = np.concatenate([chosen, rng.choice(rest, size=min(n_random, len(rest)), replace=False)])
    return chosen.astype(int), values[chosen]


def rank(
    strategy: str,
    scores: PoolScores,
    *,
    batch: int = 20,
    random_share: float = 0.0,
    seed: int | None = 0,
    new: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The whole pool in asking order. Every consecutive batch keeps its random share, so a queue
    read one image at a time still holds an unbiased sample in each batch of labels. `new` marks
    the films of sites the model has barely seen: cold start picks its typical films among those
    (among all when none is marked), since the old site's typical films are already well read."""
    n = len(scores.probabilities)
    if n == 0:  # nothing to ask about (an empty pool has no MC-dropout passes either)
        return np.zeros(0, dtype=int), np.zeros(0)
    if strategy == "batch_diverse":
        order, values = select(strategy, scores, n, seed=seed)
    elif strategy == "cold_start":
        values_all = score(strategy, scores, seed)
        among = np.flatnonzero(new) if new is not None and np.any(new) else np.arange(n)
        first = among[typical(subset(scores, among), min(batch, len(among)), seed=seed or 0)]
        others = np.setdiff1d(np.argsort(-values_all, kind="stable"), first, assume_unique=True)
        others = others[np.argsort(-values_all[others], kind="stable")]
        order = np.concatenate([first, others]).astype(int)
        values = values_all[order]
    else:
        values_all = score(strategy, scores, seed)
        order = np.argsort(-values_all, kind="stable")
        values = values_all[order]
    per_batch = int(round(batch * min(max(random_share, 0.0), 1.0))) if strategy != "random" else 0
    if per_batch == 0 or n == 0:
        return order, values
    rng = np.random.default_rng(seed)
    position = {int(index): value for index, value in zip(order, values)}
    remaining, out = [int(i) for i in order], []
    while remaining:
        head, rest = remaining[: batch - per_batch], remaining[batch - per_batch :]
        drawn = sorted(rng.choice(len(rest), size=min(per_batch, len(rest)), replace=False).tolist()) if rest else []
        out.extend(head + [rest[i] for i in drawn])
        remaining = [item for i, item in enumerate(rest) if i not in set(drawn)]
    ordered = np.asarray(out, dtype=int)
    return ordered, np.asarray([position[i] for i in ordered])


def subset(scores: PoolScores, rows: np.ndarray) -> PoolScores:
    """The scores of some of the pool's images, in the order of `rows`."""
    return PoolScores(
        scores.probabilities[rows],
        scores.embeddings[rows] if scores.embeddings is not None else None,
        scores.mc_probabilities[:, rows] if scores.mc_probabilities is not None else None,
    )


def _diverse(scores: PoolScores, uncertainty: np.ndarray, k: int) -> np.ndarray:
    """Uncertain first, then farthest-first in embedding space, with quotas per predicted class,
    so a batch is not k near-copies of one hard case."""
    if k <= 0:
        return np.zeros(0, dtype=int)
    if scores.embeddings is None:
        raise ValueError("batch_diverse needs the pool's embeddings.")
    n = len(uncertainty)
    candidates = np.argsort(-uncertainty, kind="stable")[: min(n, max(10 * k, k))]
    features = scores.embeddings[candidates].astype(np.float64)
    features /= np.linalg.norm(features, axis=1, keepdims=True) + 1e-12
    predicted = scores.probabilities[candidates].argmax(axis=1)
    classes = np.unique(predicted)
    quota = {c: int(np.ceil(k / len(classes))) for c in classes}
    weight = uncertainty[candidates] - uncertainty[candidates].min() + 1e-6
    distance = np.full(len(candidates), np.inf)
    picked: list[int] = []
    taken = np.zeros(len(candidates), dtype=bool)
    while len(picked) < min(k, len(candidates)):
        allowed = ~taken & np.array([quota[c] > 0 for c in predicted])
        if not allowed.any():
            allowed = ~taken  # a class ran out of candidates: fill from the others
        gain = np.where(allowed, np.minimum(distance, 4.0) * weight, -np.inf)
        best = int(np.argmax(gain))
        if not picked:
            best = int(np.argmax(np.where(allowed, weight, -np.inf)))
        if picked and distance[best] <= 1e-9:
            remaining = allowed & (distance > 1e-9)
            if remaining.any():  # only exact duplicates of picked images are left in this class
                best = int(np.argmax(np.where(remaining, gain, -np.inf)))
        picked.append(best)
        taken[best] = True
        quota[predicted[best]] -= 1
        distance = np.minimum(distance, np.linalg.norm(features - features[best], axis=1))
    return candidates[np.asarray(picked, dtype=int)]


def typical(scores: PoolScores, k: int, seed: int = 0) -> np.ndarray:
    """Cold start: k images that are typical and diverse in embedding space, for a site whose
    model knows nothing yet (its uncertainty means little). k-means on the normalised embeddings;
    from each cluster the image nearest its centre, the largest clusters first."""
    from sklearn.cluster import KMeans

    if scores.embeddings is None:
        raise ValueError("cold_start needs the pool's embeddings.")
    n = len(scores.embeddings)
    k = min(int(k), n)
    if k <= 0:
        return np.zeros(0, dtype=int)
    features = scores.embeddings.astype(np.float64)
    features /= np.linalg.norm(features, axis=1, keepdims=True) + 1e-12
    model = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(features)
    distance = np.linalg.norm(features - model.cluster_centers_[model.labels_], axis=1)
    sizes = np.bincount(model.labels_, minlength=k)
    picked = []
    for cluster in np.argsort(-sizes, kind="stable"):
        members = np.where(model.labels_ == cluster)[0]
        if len(members):
            picked.append(int(members[np.argmin(distance[members])]))
    return np.asarray(picked, dtype=int)


def prioritise_classes(
    order: np.ndarray, probabilities: np.ndarray, classes: list[int], *, batch: int, share: float
) -> np.ndarray:
    """The asking order with a share of every batch given to the images most likely to belong to
    `classes` (classes still being learned), so doctors see candidates of a new class early. The
    rest of each batch keeps the strategy's order; no image is asked twice."""
    per_batch = int(round(batch * min(max(share, 0.0), 1.0)))
    if not classes or per_batch == 0 or len(order) == 0:
        return order
    likely = deque(int(i) for i in np.argsort(-probabilities[:, classes].max(axis=1), kind="stable"))
    rest = deque(int(i) for i in order)
    taken: set[int] = set()
    out: list[int] = []

    def take(queue: deque[int], count: int) -> int:
        """Move up to `count` images not yet asked from the front of `queue` to the order."""
        moved = 0
        while queue and moved < count:
            candidate = queue.popleft()
            if candidate not in taken:
                out.append(candidate)
                taken.add(candidate)
                moved += 1
        return moved

    while len(out) < len(order):
        take(rest, batch - take(likely, per_batch))
    return np.asarray(out, dtype=int)
