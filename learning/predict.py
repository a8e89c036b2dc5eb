"""Batched inference: probabilities, embeddings and MC-dropout passes over many images."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from learning.data import to_tensor
from learning.decoding import load_grayscale
from learning.engine import Engine, as_engine
from learning.model import XrayNet
from learning.strategies import PoolScores


def _batches(paths: Sequence[str], size: int, batch_size: int) -> Iterator[np.ndarray]:
    """The films through the one transform, stacked in numpy. Not torch's DataLoader: its collate
    wakes torch's thread pool between two ONNX Runtime runs, and on a 2-core CPU the idle pool's
    spinning took up to 40 % of ONNX Runtime's speed (docs/benchmarks.md, "CPU inference")."""
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        yield np.stack([to_tensor(load_grayscale(path), size).numpy() for path in chunk])


def score_pool(
    net: XrayNet | Engine, paths: Sequence[str], batch_size: int = 32, mc_passes: int = 0, seed: int = 0
) -> PoolScores:
    """One pass over the pool: probabilities, embeddings and, if asked, MC-dropout samples.

    `net` is an engine (learning.engine.load_engine: ONNX Runtime where the version has an export)
    or a torch network, run as it is. Dropout sits only before the head, so the MC passes re-sample
    the head on the stored embeddings instead of running the backbone again: same distribution, a
    fraction of the cost. Images go through the one transform (learning.data.to_tensor,
    letterboxed). Batches of 32 at 224 px keep the activations of a forward pass near 0.5 GB;
    larger ones are no faster on a CPU.
    """
    engine = as_engine(net)
    outputs = [engine.run(batch) for batch in _batches(paths, engine.spec.image_size, batch_size)]
    if not outputs:
        return PoolScores(np.zeros((0, engine.spec.num_classes)), np.zeros((0, 0)), None)
    probabilities = np.concatenate([probs for probs, _ in outputs])
    embeddings = np.concatenate([features for _, features in outputs])
    mc = head_samples(embeddings, *engine.head(), engine.dropout, mc_passes, seed) if mc_passes > 0 else None
    return PoolScores(probabilities=probabilities, embeddings=embeddings, mc_probabilities=mc)


@torch.inference_mode()
def head_samples(
    embeddings: np.ndarray, weight: torch.Tensor, bias: torch.Tensor, rate: float, passes: int, seed: int
) -> np.ndarray:
    """MC dropout on the stored embeddings: `passes` head outputs, each with its own dropout mask,
    (passes, N, classes)."""
    features = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))
    generator = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(passes):
        keep = torch.rand(features.shape, generator=generator) >= rate
        dropped = features * keep / (1.0 - rate)
        samples.append(torch.nn.functional.linear(dropped, weight, bias).softmax(dim=1).numpy())
    return np.stack(samples)


def align_probabilities(
    probabilities: np.ndarray, model_names: list[str], names: list[str], renamed: dict[str, str] | None = None
) -> np.ndarray:
    """Columns in the order of `names`; a class the model does not know gets probability 0, so an
    older model is judged on the classes it never learnt as never predicting them."""
    renamed = renamed or {}
    index = {renamed.get(name, name): i for i, name in enumerate(model_names)}
    aligned = np.zeros((len(probabilities), len(names)), dtype=np.float64)
    for column, name in enumerate(names):
        if name in index:
            aligned[:, column] = probabilities[:, index[name]]
    return aligned
