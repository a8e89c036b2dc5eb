"""Decoding chest X-rays (PNG, JPEG, DICOM), transforms, datasets and the Lightning DataModule."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pydicom
import pytorch_lightning as pl
import torch
from PIL import Image, UnidentifiedImageError
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

DICOM_MAGIC_OFFSET = 128
ACCEPTED_FORMATS = {"PNG", "JPEG"}


class ImageDecodeError(ValueError):
    """The bytes are not a usable chest X-ray image; the message says why, for the user.

    `kind` is one of: unsupported (not an accepted format), too_large, corrupt.
    """

    def __init__(self, message: str, kind: str = "corrupt"):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class LabeledImage:
    """One training or evaluation example: where its pixels are and its class index."""

    path: str
    class_index: int


def is_dicom(data: bytes) -> bool:
    return len(data) >= DICOM_MAGIC_OFFSET + 4 and data[DICOM_MAGIC_OFFSET:DICOM_MAGIC_OFFSET + 4] == b"DICM"


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """Return the image as a 2-D uint8 grayscale array, or raise ImageDecodeError."""
    if not data:
        raise ImageDecodeError("The file is empty.")
    if is_dicom(data):
        return _decode_dicom(data, max_pixels)
    return _decode_bitmap(data, max_pixels)


def _decode_bitmap(data: bytes, max_pixels: int) -> np.ndarray:
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageDecodeError("The file is not a PNG, JPEG or DICOM image.", "unsupported") from None
    if image.format not in ACCEPTED_FORMATS:
        raise ImageDecodeError(f"{image.format} images are not accepted; send PNG, JPEG or DICOM.",
                              "unsupported")
    width, height = image.size
    _check_size(width, height, max_pixels)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageDecodeError(f"The image is truncated or corrupt ({error}).") from None
    if image.mode in ("I;16", "I;16B", "I", "F"):
        return _to_uint8(np.asarray(image, dtype=np.float64))
    return np.asarray(image.convert("L"), dtype=np.uint8)


def _decode_dicom(data: bytes, max_pixels: int) -> np.ndarray:
    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, OSError, ValueError) as error:
        raise ImageDecodeError(f"The DICOM file is malformed ({error}).") from None
    if "PixelData" not in dataset:
        raise ImageDecodeError("The DICOM file holds no pixel data.")
    rows, columns = int(dataset.get("Rows", 0)), int(dataset.get("Columns", 0))
    _check_size(columns, rows, max_pixels)
    try:
        pixels = dataset.pixel_array
    except Exception as error:  # pydicom raises many types for bad or unsupported pixel data
        raise ImageDecodeError(f"The DICOM pixel data cannot be read ({error}).") from None
    if pixels.ndim == 3 and dataset.get("SamplesPerPixel", 1) == 1:
        pixels = pixels[0]  # multi-frame: the first frame is the radiograph
    if pixels.ndim != 2:
        raise ImageDecodeError("Only single-channel (grayscale) DICOM radiographs are accepted.",
                              "unsupported")
    values = apply_modality_lut(pixels, dataset)
    values = apply_voi_lut(values, dataset)
    image = _to_uint8(np.asarray(values, dtype=np.float64))
    if dataset.get("PhotometricInterpretation", "") == "MONOCHROME1":
        image = 255 - image  # MONOCHROME1 stores bright air as high values; show it as on film
    return image


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageDecodeError("The image has no pixels.")
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"The image is {width}x{height} pixels, over the limit of {max_pixels:,} pixels.",
            "too_large")


def _to_uint8(values: np.ndarray) -> np.ndarray:
    low, high = float(np.min(values)), float(np.max(values))
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round((values - low) / (high - low) * 255.0).astype(np.uint8)


def encode_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def load_grayscale(path: str | Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.uint8)


def to_tensor(image: np.ndarray, size: int) -> torch.Tensor:
    """A (1, size, size) float tensor in [0, 1]; the model normalises for its backbone."""
    resized = Image.fromarray(image, mode="L").resize((size, size), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).unsqueeze(0)


def augmentation() -> v2.Transform:
    # Light affine and intensity changes: without them a fine-tune on PneumoniaMNIST swings
    # widely on the test patients while validation looks perfect.
    return v2.Compose([
        v2.RandomAffine(degrees=8, translate=(0.05, 0.05), scale=(0.92, 1.08)),
        v2.ColorJitter(brightness=0.2, contrast=0.2),
    ])


class XrayDataset(Dataset):
    """Images resized once into memory (radiographs are read from disk only at start)."""

    def __init__(self, items: Sequence[LabeledImage], size: int, augment: bool = False):
        self.items = list(items)
        self.size = size
        self.transform = augmentation() if augment else None
        self._tensors = [to_tensor(load_grayscale(item.path), size) for item in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self._tensors[index]
        if self.transform is not None:
            image = self.transform(image).clamp(0.0, 1.0)
        return image, self.items[index].class_index


class TensorImages(Dataset):
    """Unlabeled images for batched inference, already decoded and resized."""

    def __init__(self, paths: Sequence[str], size: int):
        self.paths = list(paths)
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return to_tensor(load_grayscale(self.paths[index]), self.size)


class XrayDataModule(pl.LightningDataModule):
    def __init__(self, train: Sequence[LabeledImage], val: Sequence[LabeledImage], size: int,
                 batch_size: int, augment: bool = True, num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.train_items, self.val_items = list(train), list(val)
        self.size, self.batch_size, self.augment = size, batch_size, augment
        self.num_workers, self.seed = num_workers, seed

    def setup(self, stage: str | None = None) -> None:
        if not hasattr(self, "train_set"):
            self.train_set = XrayDataset(self.train_items, self.size, augment=self.augment)
            self.val_set = XrayDataset(self.val_items, self.size, augment=False)

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True,
                          num_workers=self.num_workers, generator=generator,
                          persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size * 2, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)
