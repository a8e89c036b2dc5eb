"""Batched inference: probabilities, embeddings and MC-dropout passes over many images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from learning.data import TensorImages
from learning.model import XrayNet
from learning.strategies import PoolScores


def _device(net: XrayNet) -> torch.device:
    return next(net.parameters()).device


@torch.inference_mode()
def score_pool(
    net: XrayNet, paths: Sequence[str], batch_size: int = 32, mc_passes: int = 0, seed: int = 0
) -> PoolScores:
    """One pass over the pool: probabilities, embeddings and, if asked, MC-dropout samples.

    Dropout sits only before the head, so the MC passes re-sample the head on the stored
    embeddings instead of running the backbone again: same distribution, a fraction of the cost.
    Images go through the one transform (learning.data.to_tensor, letterboxed). Batches of 32
    at 224 px keep the activations of a forward pass near 0.5 GB; larger ones are no faster on a CPU.
    """
    net = net.eval()
    loader = DataLoader(TensorImages(paths, net.spec.image_size), batch_size=batch_size)
    device = _device(net)
    embeddings = [net.embed(batch.to(device)) for batch in loader]
    if not embeddings:
        return PoolScores(np.zeros((0, net.spec.num_classes)), np.zeros((0, 0)), None)
    features = torch.cat(embeddings)
    probabilities = net.head(features).float().softmax(dim=1).cpu().numpy()
    mc = None
    if mc_passes > 0:
        generator = torch.Generator(device=device).manual_seed(seed)
        rate = net.dropout.p
        samples = []
        for _ in range(mc_passes):
            keep = torch.rand(features.shape, generator=generator, device=device) >= rate
            dropped = features * keep / (1.0 - rate)
            samples.append(net.head(dropped).float().softmax(dim=1).cpu().numpy())
        mc = np.stack(samples)
    return PoolScores(probabilities=probabilities, embeddings=features.float().cpu().numpy(), mc_probabilities=mc)


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
