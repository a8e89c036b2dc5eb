"""Training data: labeled images, the one transform (letterbox to a tensor), augmentation, patient splits,
datasets and the class-balanced sampler (the Lightning DataModule is learning.datamodule)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, WeightedRandomSampler

from learning.decoding import load_grayscale


@dataclass(frozen=True)
class LabeledImage:
    """One training or evaluation example: where its pixels are, its class index and, when
    known, the patient it belongs to (a pseudonym, never a name) so that splits never leak, and
    the site that took it, so that a round weighs a new site's few films against the replay."""

    path: str
    class_index: int
    group: str | None = None
    site: str | None = None


Decoder = Callable[[str], np.ndarray]  # a film's path to its 2-D uint8 grayscale pixels


def letterbox_box(height: int, width: int, size: int) -> tuple[int, int, int, int]:
    """Where an image of height x width lands in the size x size model input:
    (top, left, content height, content width). The longer side becomes `size`, the shorter
    one keeps the aspect ratio and is centred between bands of padding."""
    if height <= 0 or width <= 0:
        raise ValueError("The image has no pixels.")
    scale = size / max(height, width)
    content_h = min(size, max(1, int(round(height * scale))))
    content_w = min(size, max(1, int(round(width * scale))))
    return (size - content_h) // 2, (size - content_w) // 2, content_h, content_w


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """The image as a size x size uint8 array: aspect ratio kept, padded with 0, never squashed."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    height, width = image.shape
    top, left, content_h, content_w = letterbox_box(height, width, size)
    if (content_h, content_w) == (height, width):
        resized = image
    else:
        resized = np.asarray(
            Image.fromarray(image, mode="L").resize((content_w, content_h), Image.Resampling.BILINEAR), dtype=np.uint8
        )
    if (content_h, content_w) == (size, size):
        return resized.copy() if resized is image else resized
    out = np.zeros((size, size), dtype=np.uint8)
    out[top : top + content_h, left : left + content_w] = resized
    return out


def pixels_to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """A letterboxed uint8 array (size x size) as the (1, size, size) float tensor in [0, 1]."""
    return torch.from_numpy(pixels.astype(np.float32) / 255.0).unsqueeze(0)


def to_tensor(image: np.ndarray, size: int) -> torch.Tensor:
    """THE transform of training, scoring, serving and Grad-CAM: a grayscale uint8 image of any
    shape to a (1, size, size) float tensor in [0, 1], letterboxed (see `letterbox`).
    The model normalises for its backbone."""
    return pixels_to_tensor(letterbox(image, size))


def augmentation() -> Callable[[torch.Tensor], torch.Tensor]:
    from torchvision.transforms import v2  # here: serving imports this module, and torchvision takes 2 s

    # Light affine and intensity changes: without them a fine-tune on PneumoniaMNIST swings
    # widely on the test patients while validation looks perfect.
    return v2.Compose(
        [
            v2.RandomAffine(degrees=8, translate=(0.05, 0.05), scale=(0.92, 1.08)),
            v2.ColorJitter(brightness=0.2, contrast=0.2),
        ]
    )


def patient_split(
    groups: Sequence[str], fractions: Mapping[str, float], seed: int, stratify: Sequence | None = None
) -> dict[str, list[int]]:
    """Split items into named parts by patient: the indices of each part, sorted.

    `groups[i]` is item i's patient; every image of a patient lands in the same part, so no
    patient is ever in two parts. (An image without a patient id is its own patient: pass a
    unique id for it.) `fractions` are the parts' shares of the images (normalised to sum 1).
    With `stratify` (a label per item) the split is approximately stratified: the patients of
    each label (a patient's most frequent label) are dealt out separately, each to the part
    furthest below its target, so a rare class gets into the larger parts first.
    Deterministic for a given seed.
    """
    names = list(fractions)
    if not names:
        raise ValueError("patient_split needs at least one part.")
    shares = np.array([float(fractions[name]) for name in names])
    if np.any(shares < 0) or not np.isfinite(shares).all() or shares.sum() <= 0:
        raise ValueError("Split fractions must be non-negative and not all zero.")
    shares = shares / shares.sum()
    if stratify is not None and len(stratify) != len(groups):
        raise ValueError("stratify needs one label per item.")

    members: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(str(group), []).append(index)
    strata: dict[str, list[str]] = {}
    for group, indices in members.items():
        if stratify is None:
            key = ""
        else:
            labels = [str(stratify[i]) for i in indices]
            key = max(sorted(set(labels)), key=labels.count)  # most frequent, ties by name
        strata.setdefault(key, []).append(group)

    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {name: [] for name in names}
    for key in sorted(strata):
        stratum = sorted(strata[key])
        rng.shuffle(stratum)
        total = sum(len(members[group]) for group in stratum)
        targets = shares * total
        filled = np.zeros(len(names))
        for group in stratum:
            part = int(np.argmax(targets - filled))  # the part furthest below its target
            parts[names[part]].extend(members[group])
            filled[part] += len(members[group])
    return {name: sorted(indices) for name, indices in parts.items()}


class XrayDataset(Dataset):
    """Labeled images for training and validation.

    With `cache` (the default) each image is decoded once and kept letterboxed as uint8 in one
    array: 50 KB per image at 224 px (a float tensor would be four times that), so 5,000
    radiographs take about 250 MB. Without it every item is read from disk when asked for,
    which keeps memory flat however many images there are. Both give the tensors `to_tensor`
    gives, so training sees exactly what serving sees.
    """

    def __init__(
        self,
        items: Sequence[LabeledImage],
        size: int,
        augment: bool = False,
        cache: bool = True,
        decode: Decoder = load_grayscale,
    ):
        self.items = list(items)
        self.size = size
        self.transform = augmentation() if augment else None
        self.decode = decode
        self._pixels: np.ndarray | None = None
        if cache:
            self._pixels = np.empty((len(self.items), size, size), dtype=np.uint8)
            first: dict[str, int] = {}  # a film listed twice (replayed and relabeled) is decoded once
            for index, item in enumerate(self.items):
                seen = first.setdefault(item.path, index)
                if seen == index:
                    self._pixels[index] = letterbox(decode(item.path), size)
                else:
                    self._pixels[index] = self._pixels[seen]

    def __len__(self) -> int:
        return len(self.items)

    def pixels(self, index: int) -> np.ndarray:
        """The letterboxed uint8 image the model sees (before augmentation)."""
        if self._pixels is not None:
            return self._pixels[index]
        return letterbox(self.decode(self.items[index].path), self.size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = pixels_to_tensor(self.pixels(index))
        if self.transform is not None:
            image = self.transform(image).clamp(0.0, 1.0)
        return image, self.items[index].class_index

    @property
    def labels(self) -> list[int]:
        return [item.class_index for item in self.items]


class TensorImages(Dataset):
    """Unlabeled images for batched inference, already decoded and resized."""

    def __init__(self, paths: Sequence[str], size: int):
        self.paths = list(paths)
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return to_tensor(load_grayscale(self.paths[index]), self.size)


def stratum_weights(labels: Sequence[int], sites: Sequence[str | None] | None = None) -> np.ndarray:
    """Each item's share (they sum to 1) when every site weighs the same and, within a site, every
    class does: 40 films of a new site count as much as 500 replayed films of the old one, and a
    class with five films as much as one with five hundred. Without sites: classes alone."""
    keys = list(zip(sites if sites is not None else [None] * len(labels), labels, strict=True))
    per_stratum = Counter(keys)
    classes_per_site = Counter(site for site, _ in per_stratum)
    site_count = len(classes_per_site)
    weights = np.array([1.0 / (site_count * classes_per_site[key[0]] * per_stratum[key]) for key in keys])
    return weights / weights.sum() if len(weights) else weights


def balanced_sampler(
    labels: Sequence[int], draws: int, generator: torch.Generator, sites: Sequence[str | None] | None = None
) -> WeightedRandomSampler:
    """Draws with replacement, each class as often as the others however many images it has (and
    with `sites`, each site as often as the others; see `stratum_weights`)."""
    weights = stratum_weights(labels, sites).tolist()
    return WeightedRandomSampler(weights, draws, replacement=True, generator=generator)
