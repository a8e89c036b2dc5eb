"""The frozen trunk of a network and its activations, computed once per image and per trunk.

A fine-tuning round trains only the upper blocks and the head. The lower blocks (the trunk) stay
as the last full fine-tune left them, so their output for an image never changes until the trunk
does: it is computed once, stored on disk keyed by the trunk's weights and the image's bytes, and
every later round and re-score starts from it. A new trunk (a full fine-tune, another backbone,
another split or input size) has another key and never reads the old activations; an image whose
bytes changed has another content hash and never does either.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from learning.data import TensorImages
from learning.model import XrayNet
from learning.predict import head_samples
from learning.strategies import PoolScores

# Bumped whenever the transform from file to input tensor changes (letterbox, scaling): old
# activations were computed from other inputs and must not be read.
TRANSFORM_VERSION = "letterbox-v1"


@dataclass(frozen=True)
class TrunkSplit:
    """A network cut in two at `at`: `lower` maps input images to activations, `upper` maps
    activations to the pooled embedding the head reads. Both run the network's own modules, so
    training through `upper` trains the network itself."""

    net: XrayNet
    at: int
    lower: Callable[[torch.Tensor], torch.Tensor]
    upper: Callable[[torch.Tensor], torch.Tensor]
    lower_modules: tuple[nn.Module, ...]

    def logits(self, activations: torch.Tensor) -> torch.Tensor:
        return self.net.head(self.net.dropout(self.upper(activations)))

    def upper_parameters(self) -> list[nn.Parameter]:
        frozen = {id(p) for module in self.lower_modules for p in module.parameters()}
        return [p for p in self.net.parameters() if id(p) not in frozen]

    def upper_modules(self) -> Iterator[nn.Module]:
        frozen = {id(m) for module in self.lower_modules for m in module.modules()}
        return (m for m in self.net.modules() if id(m) not in frozen)

    def key(self) -> str:
        """What the activations depend on: backbone, cut, input size, transform and every weight
        and running statistic of the lower modules."""
        digest = hashlib.sha256()
        spec = self.net.spec
        digest.update(f"{spec.backbone}|{self.at}|{spec.image_size}|{TRANSFORM_VERSION}".encode())
        for index, module in enumerate(self.lower_modules):
            for name, tensor in sorted(module.state_dict().items()):
                digest.update(f"{index}.{name}".encode())
                digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return digest.hexdigest()


def splittable(backbone: str) -> bool:
    return backbone in _SPLITS


def split(net: XrayNet, at: int) -> TrunkSplit:
    if net.spec.backbone not in _SPLITS:
        raise ValueError(f"The {net.spec.backbone} backbone cannot be split; rounds need {sorted(_SPLITS)}.")
    return _SPLITS[net.spec.backbone](net, at)


def _prepare(net: XrayNet, x: torch.Tensor) -> torch.Tensor:
    """XrayNet.embed's input handling: three channels, ImageNet normalisation."""
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return (x - net.imagenet_mean) / net.imagenet_std


def _efficientnet(net: XrayNet, at: int) -> TrunkSplit:
    e: Any = net.features.net  # efficientnet_lite_pytorch's EfficientNet: its parts are reached by attribute
    blocks = e._blocks
    if not 0 < at < len(blocks):
        raise ValueError(f"The cut must fall between blocks 1 and {len(blocks) - 1}, not at {at}.")
    rate = e._global_params.drop_connect_rate

    def run(x: torch.Tensor, indices: range) -> torch.Tensor:
        for index in indices:  # the drop-connect rate EfficientNet.extract_features gives each block
            x = blocks[index](x, drop_connect_rate=rate * index / len(blocks) if rate else None)
        return x

    def lower(x: torch.Tensor) -> torch.Tensor:
        return run(e._swish(e._bn0(e._conv_stem(_prepare(net, x)))), range(at))

    def upper(x: torch.Tensor) -> torch.Tensor:
        x = e._swish(e._bn1(e._conv_head(run(x, range(at, len(blocks))))))
        return net.pool(x).flatten(1)

    return TrunkSplit(net, at, lower, upper, (e._conv_stem, e._bn0, *blocks[:at]))


def _sequential(net: XrayNet, at: int) -> TrunkSplit:
    layers = net.features
    if not isinstance(layers, nn.Sequential):
        raise ValueError(f"The {net.spec.backbone} backbone is not a sequence of layers.")
    if not 0 < at < len(layers):
        raise ValueError(f"The cut must fall inside the backbone's {len(layers)} layers, not at {at}.")

    def lower(x: torch.Tensor) -> torch.Tensor:
        return layers[:at](_prepare(net, x))

    def upper(x: torch.Tensor) -> torch.Tensor:
        return net.pool(layers[at:](x)).flatten(1)

    return TrunkSplit(net, at, lower, upper, tuple(layers[:at]))


_SPLITS: dict[str, Callable[[XrayNet, int], TrunkSplit]] = {
    "efficientnet_lite0": _efficientnet,
    "small_cnn": _sequential,
}


def content_hash(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ActivationStore:
    """Trunk activations on disk, one float16 .npy per (trunk key, image content hash).

    Written to a temporary file and renamed, so a reader never sees half a file and two writers
    of the same activations leave one whole copy. A trunk's folder is dropped as a whole once no
    version uses it (`forget`)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, key: str, digest: str) -> Path:
        return self.root / key[:32] / digest[:2] / f"{digest}.npy"

    def get(self, key: str, digest: str) -> np.ndarray | None:
        try:
            return np.load(self._path(key, digest), allow_pickle=False)
        except (FileNotFoundError, ValueError, OSError):
            return None  # absent, or unreadable: computed again

    def has(self, key: str, digest: str) -> bool:
        return self._path(key, digest).is_file()

    def put(self, key: str, digest: str, activations: np.ndarray) -> None:
        path = self._path(key, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                np.save(out, activations.astype(np.float16), allow_pickle=False)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def keys(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.exists() else []

    def forget(self, keep: set[str]) -> int:
        """Remove every trunk's activations but those in `keep`; returns how many trunks went."""
        gone = 0
        for name in self.keys():
            if name not in {key[:32] for key in keep}:
                shutil.rmtree(self.root / name, ignore_errors=True)
                gone += 1
        return gone

    def size_bytes(self, key: str) -> int:
        folder = self.root / key[:32]
        return sum(p.stat().st_size for p in folder.rglob("*.npy")) if folder.exists() else 0


@dataclass
class Activations:
    values: torch.Tensor  # (N, C, H, W) float16, in the order of the paths asked for
    computed: int  # how many were not in the store
    key: str  # the trunk's (TrunkSplit.key)


@torch.inference_mode()
def activations(
    trunk: TrunkSplit,
    paths: Sequence[str],
    store: ActivationStore,
    batch_size: int = 32,
    digests: Sequence[str] | None = None,
    key: str | None = None,
) -> Activations:
    """The trunk's output for each image: read from the store, the missing ones computed (in
    batches, the trunk in eval mode) and stored. `digests` and `key`, when the caller has them
    already, spare hashing the files and the trunk's weights again."""
    key = key or trunk.key()
    digests = list(digests) if digests is not None else [content_hash(path) for path in paths]
    found: dict[int, np.ndarray] = {}
    missing: list[int] = []
    for index, digest in enumerate(digests):
        cached = store.get(key, digest)
        if cached is None:
            missing.append(index)
        else:
            found[index] = cached
    if missing:
        # eval mode, and channels_last: oneDNN ran the trunk 1.45x faster so on a CPU with the same
        # values to 6e-5 (docs/benchmarks.md); both are undone before the network goes back
        modes = [m.training for m in trunk.lower_modules]
        _lay_out(trunk.lower_modules, torch.channels_last)
        for module in trunk.lower_modules:
            module.eval()
        try:
            images = TensorImages([paths[i] for i in missing], trunk.net.spec.image_size)
            device = next(trunk.net.parameters()).device
            for start in range(0, len(missing), batch_size):
                chunk = missing[start : start + batch_size]
                batch = torch.stack([images[start + offset] for offset in range(len(chunk))])
                batch = batch.to(device).contiguous(memory_format=torch.channels_last)
                out = trunk.lower(batch).to("cpu", torch.float16).contiguous().numpy()
                for offset, index in enumerate(chunk):
                    store.put(key, digests[index], out[offset])
                    found[index] = out[offset]
        finally:
            _lay_out(trunk.lower_modules, torch.contiguous_format)
            for module, mode in zip(trunk.lower_modules, modes):
                module.train(mode)
    if not digests:
        return Activations(torch.zeros(0, dtype=torch.float16), 0, key)
    values = torch.from_numpy(np.stack([found[i] for i in range(len(digests))]))
    return Activations(values, len(missing), key)


def warm(trunk: TrunkSplit, paths: Sequence[str], store: ActivationStore, limit: int) -> int:
    """Compute and store the trunk's output for up to `limit` of `paths` the store lacks, and say
    how many. The worker does this between rounds for the films the next round will train on, so
    that the round itself runs only the upper blocks."""
    key = trunk.key()
    todo: list[tuple[str, str]] = []
    for path in paths:
        if len(todo) >= limit:
            break
        digest = content_hash(path)
        if not store.has(key, digest):
            todo.append((path, digest))
    if todo:
        activations(trunk, [path for path, _ in todo], store, digests=[digest for _, digest in todo], key=key)
    return len(todo)


def _lay_out(modules: Sequence[nn.Module], memory_format: torch.memory_format) -> None:
    """Re-lay the modules' weights outside inference mode: weights made inside it could never
    be trained again."""
    with torch.inference_mode(False):
        for module in modules:
            module.to(memory_format=memory_format)


@torch.inference_mode()
def pool_scores(
    trunk: TrunkSplit,
    paths: Sequence[str],
    store: ActivationStore,
    mc_passes: int = 0,
    seed: int = 0,
    batch_size: int = 256,
) -> PoolScores:
    """learning.predict.score_pool's answer from stored activations: only the upper blocks and the
    head run, so re-scoring the pool after a round (which keeps the trunk) costs a fraction of a
    full forward pass. Images the store lacks are computed once and stored."""
    net = trunk.net
    stored = activations(trunk, paths, store)
    modes = [m.training for m in net.modules()]
    net.eval()
    try:
        embeddings = [
            trunk.upper(stored.values[start : start + batch_size].float()).numpy()
            for start in range(0, len(paths), batch_size)
        ]
    finally:
        for module, mode in zip(net.modules(), modes):
            module.train(mode)
    if not embeddings:
        return PoolScores(np.zeros((0, net.spec.num_classes)), np.zeros((0, 0)), None)
    features = np.concatenate(embeddings)
    weight, bias = net.head.weight.detach(), net.head.bias.detach()
    probabilities = torch.nn.functional.linear(torch.from_numpy(features), weight, bias).softmax(dim=1).numpy()
    mc = head_samples(features, weight, bias, float(net.dropout.p), mc_passes, seed) if mc_passes > 0 else None
    return PoolScores(probabilities=probabilities, embeddings=features, mc_probabilities=mc)
