"""Decoding chest X-rays (PNG, JPEG, DICOM), transforms, datasets and the Lightning DataModule."""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytorch_lightning as pl
import torch
from PIL import Image, ImageFile, UnidentifiedImageError
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, WeightedRandomSampler
from torchvision.transforms import v2

DICOM_MAGIC_OFFSET = 128
ACCEPTED_FORMATS = {"PNG", "JPEG", "MPO"}  # MPO: a JPEG with extra pictures (first kept)
HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I", "F")
# a radiograph's header nests a handful of sequences; a hostile one nests hundreds to exhaust the stack
MAX_SEQUENCE_DEPTH = 32
TOO_DEEP = (
    f"The DICOM file nests its sequences more than {MAX_SEQUENCE_DEPTH} levels deep; "
    "a radiograph's header needs far fewer, so it is refused as malformed."
)


class ImageDecodeError(ValueError):
    """The bytes are not a usable chest X-ray image; the message says why, for the user.

    `kind` is one of: unsupported (not an accepted format), too_large, corrupt.
    """

    def __init__(self, message: str, kind: str = "corrupt"):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class LabeledImage:
    """One training or evaluation example: where its pixels are, its class index and, when
    known, the patient it belongs to (a pseudonym, never a name) so that splits never leak."""

    path: str
    class_index: int
    group: str | None = None


def is_dicom(data: bytes) -> bool:
    return len(data) >= DICOM_MAGIC_OFFSET + 4 and data[DICOM_MAGIC_OFFSET : DICOM_MAGIC_OFFSET + 4] == b"DICM"


@dataclass(frozen=True)
class DecodedImage:
    """An upload's pixels as 2-D uint8 grayscale, at most `max_side` on its longer side, with the
    size the file declared (what the viewer reports) and the format it came in."""

    pixels: np.ndarray
    width: int
    height: int
    source_format: str  # png | jpeg | dicom


def decode_image(data: bytes, max_pixels: int, min_side: int = 1, max_side: int | None = None) -> np.ndarray:
    """Return the image as a 2-D uint8 grayscale array, or raise ImageDecodeError."""
    return decode_radiograph(data, max_pixels, min_side, max_side).pixels


def decode_radiograph(
    data: bytes, max_pixels: int, min_side: int = 1, max_side: int | None = None, dicom_rules: DicomRules | None = None
) -> DecodedImage:
    """Decode PNG, JPEG or DICOM bytes into bounded grayscale pixels, or raise ImageDecodeError.

    Every failure of the decoders on hostile bytes (bombs, truncation, broken headers) becomes an
    ImageDecodeError with a message for the user. With `max_side` the pixels are scaled down so
    the longer side is at most that (JPEG is decoded at the reduced size directly), which bounds
    the memory and time of everything done with them afterwards."""
    if not data:
        raise ImageDecodeError("The file is empty.")
    if is_dicom(data):
        return _decode_dicom(data, max_pixels, min_side, max_side, dicom_rules or DicomRules())
    return _decode_bitmap(data, max_pixels, min_side, max_side)


def _open_bitmap(data: bytes, max_pixels: int) -> Image.Image:
    # A library may switch Pillow to tolerate truncated files for the whole process (WeasyPrint does on
    # import); an upload that is cut short or whose text chunks inflate must still be refused.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    with warnings.catch_warnings():
        # Pillow only warns between its own limit and twice it; either way the header lies or is huge
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageDecodeError(
                f"The image declares more pixels than the limit of {max_pixels:,} pixels.", "too_large"
            ) from None
        except UnidentifiedImageError:
            raise ImageDecodeError("The file is not a PNG, JPEG or DICOM image.", "unsupported") from None
        except ValueError as error:
            raise ImageDecodeError(_chunk_message(error)) from None
        except Exception as error:  # Pillow's parsers raise many types (SyntaxError, struct.error ...) on bad bytes
            raise ImageDecodeError(f"The image is truncated or corrupt ({error}).") from None


def _chunk_message(error: Exception) -> str:
    if "Decompressed" in str(error):  # a zTXt/iTXt/iCCP chunk that inflates beyond Pillow's limit
        return "The image carries a metadata chunk that inflates beyond the allowed size."
    return f"The image is truncated or corrupt ({error})."


def _decode_bitmap(data: bytes, max_pixels: int, min_side: int, max_side: int | None) -> DecodedImage:
    image = _open_bitmap(data, max_pixels)
    if image.format not in ACCEPTED_FORMATS:
        raise ImageDecodeError(f"{image.format} images are not accepted; send PNG, JPEG or DICOM.", "unsupported")
    if image.format == "PNG" and getattr(image, "is_animated", False):
        raise ImageDecodeError("Animated PNG images are not accepted; send one radiograph per file.", "unsupported")
    width, height = image.size
    _check_size(width, height, max_pixels, min_side)
    try:
        if image.format in ("JPEG", "MPO") and max_side is not None and max(width, height) > max_side:
            # JPEG decodes at 1/2, 1/4 or 1/8 scale directly: the full-size pixels never exist
            image.draft("L", _fitted(width, height, max_side))
        image.load()
        if image.mode in HIGH_DEPTH_MODES:
            pixels = _to_uint8(np.asarray(_fit(image, max_side)))
        else:
            pixels = np.asarray(_fit(image.convert("L"), max_side), dtype=np.uint8)
    except ImageDecodeError:
        raise
    except ValueError as error:
        raise ImageDecodeError(_chunk_message(error)) from None
    except Exception as error:  # truncated data (OSError), broken chunks (SyntaxError), bad tables ...
        raise ImageDecodeError(f"The image is truncated or corrupt ({error}).") from None
    source = "png" if image.format == "PNG" else "jpeg"
    return DecodedImage(pixels, width, height, source)


def _fitted(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _fit(image: Image.Image, max_side: int | None) -> Image.Image:
    """The image scaled down (never up) so its longer side is at most max_side."""
    if max_side is None or max(image.size) <= max_side:
        return image
    return image.resize(_fitted(*image.size, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)


# BodyPartExamined values (PS3.16 Annex L and common vendor spellings) that are clearly not a chest
NOT_CHEST = (
    "SKULL",
    "HEAD",
    "BRAIN",
    "FACE",
    "JAW",
    "TMJ",
    "SINUS",
    "ORBIT",
    "EAR",
    "NECK",
    "CSPINE",
    "TSPINE",
    "LSPINE",
    "SSPINE",
    "COCCYX",
    "SPINE",
    "ABDOMEN",
    "PELVIS",
    "HIP",
    "SHOULDER",
    "CLAVICLE",
    "SCAPULA",
    "ARM",
    "HUMERUS",
    "ELBOW",
    "FOREARM",
    "WRIST",
    "HAND",
    "FINGER",
    "THUMB",
    "LEG",
    "FEMUR",
    "KNEE",
    "PATELLA",
    "TIBIA",
    "FIBULA",
    "ANKLE",
    "FOOT",
    "HEEL",
    "CALCANEUS",
    "TOE",
    "EXTREMITY",
    "UPPER LIMB",
    "LOWER LIMB",
    "BREAST",
    "KIDNEY",
    "BLADDER",
    "COLON",
    "STOMACH",
    "LIVER",
    "DENTAL",
    "TEETH",
)


@dataclass(frozen=True)
class DicomRules:
    """Which DICOM objects count as chest radiographs (config `dicom:`): the modalities accepted and
    the body parts refused; an empty or missing BodyPartExamined is accepted."""

    modalities: tuple[str, ...] = ("CR", "DX")
    body_parts_refused: tuple[str, ...] = NOT_CHEST
    refuse_burned_in_annotation: bool = True


def read_dicom(data: bytes) -> pydicom.Dataset:
    """The parsed DICOM file (pixel data not decoded yet), or ImageDecodeError (400) when malformed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about sloppy but readable headers
            dataset = pydicom.dcmread(io.BytesIO(data))
            _check_nesting(dataset)
    except ImageDecodeError:
        raise
    except RecursionError:  # pydicom reads sequences of undefined length recursively, all at once
        raise ImageDecodeError(TOO_DEEP) from None
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError, OverflowError) as error:
        raise ImageDecodeError(f"The DICOM file is malformed ({error}).") from None
    return dataset


def _check_nesting(dataset: pydicom.Dataset) -> None:
    """Refuse sequences nested deeper than MAX_SEQUENCE_DEPTH before anything walks the header
    (pydicom, dicognito and the de-identification each recurse once per level). Counted without
    recursion: pydicom reads a sequence of defined length when it is first used, one level a time."""
    stack = [(dataset, 0)]
    while stack:
        node, level = stack.pop()
        for raw in node.elements():
            if raw.VR not in ("SQ", None):  # None: implicit VR, where only the dictionary knows
                continue
            try:
                element = node[raw.tag]
            except RecursionError:
                raise
            except Exception:  # a value pydicom cannot convert is judged where it is read
                continue
            if element.VR != "SQ":
                continue
            if level + 1 > MAX_SEQUENCE_DEPTH:
                raise ImageDecodeError(TOO_DEEP)
            stack.extend((item, level + 1) for item in element.value)


def _text(dataset, keyword: str) -> str:
    try:
        value = dataset.get(keyword, "")
    except Exception:  # a value pydicom cannot convert
        raise ImageDecodeError(f"The DICOM {keyword} cannot be read.") from None
    return str(value if value is not None else "").strip().upper()


def check_dicom(dataset, rules: DicomRules = DicomRules()) -> None:
    """Refuse (ImageDecodeError, kind unsupported: 415) what is not a single grayscale chest radiograph,
    with a message naming the reason. A file without pixel data is malformed (400) whatever it says."""
    if "PixelData" not in dataset:
        raise ImageDecodeError("The DICOM file holds no pixel data.")
    accepted = ", ".join(rules.modalities)
    modality = _text(dataset, "Modality")
    if not modality:
        raise ImageDecodeError(
            f"The DICOM file names no Modality; medal reads chest radiographs ({accepted}).", "unsupported"
        )
    if modality not in rules.modalities:
        raise ImageDecodeError(
            f"Modality {modality[:16]} is not accepted; medal reads chest radiographs ({accepted}).", "unsupported"
        )
    photometric = _text(dataset, "PhotometricInterpretation") or "MONOCHROME2"
    if _dicom_int(dataset, "SamplesPerPixel", 1) != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ImageDecodeError(
            f"Colour DICOM images are not accepted (PhotometricInterpretation {photometric[:20]}); "
            "medal reads grayscale radiographs.",
            "unsupported",
        )
    frames = _dicom_int(dataset, "NumberOfFrames", 1)
    if frames > 1:
        raise ImageDecodeError(
            f"Multi-frame DICOM images are not accepted (NumberOfFrames {frames}); send one radiograph per file.",
            "unsupported",
        )
    if _dicom_int(dataset, "BitsAllocated", 8) == 1 or _dicom_int(dataset, "BitsStored", 8) == 1:
        raise ImageDecodeError("1-bit DICOM images are not accepted; a radiograph needs grey levels.", "unsupported")
    body_part = " ".join(_text(dataset, "BodyPartExamined").replace("_", " ").split())
    if body_part and body_part in rules.body_parts_refused:
        raise ImageDecodeError(
            f"BodyPartExamined {body_part[:16]} is not a chest; medal reads chest radiographs.", "unsupported"
        )
    if rules.refuse_burned_in_annotation and _text(dataset, "BurnedInAnnotation") == "YES":
        raise ImageDecodeError(
            "The DICOM declares burned-in annotation (BurnedInAnnotation YES): text in the pixels may identify "
            "the patient, and medal cannot remove it.",
            "unsupported",
        )


def _decode_dicom(
    data: bytes, max_pixels: int, min_side: int, max_side: int | None, rules: DicomRules = DicomRules()
) -> DecodedImage:
    dataset = read_dicom(data)
    check_dicom(dataset, rules)
    return decode_dicom(dataset, max_pixels, min_side, max_side)


def decode_dicom(dataset, max_pixels: int, min_side: int = 1, max_side: int | None = None) -> DecodedImage:
    """A checked dataset's pixels as bounded uint8 grayscale: modality LUT (rescale, signed values),
    VOI LUT or window, MONOCHROME1 inverted; compressed syntaxes through pydicom's handlers
    (pylibjpeg: JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, HTJ2K; RLE)."""
    if "PixelData" not in dataset:
        raise ImageDecodeError("The DICOM file holds no pixel data.")
    rows, columns = _dicom_int(dataset, "Rows"), _dicom_int(dataset, "Columns")
    _check_size(columns, rows, max_pixels, min_side)
    _dicom_number(dataset, "RescaleIntercept")  # checked: the modality LUT would fail on it later
    slope = _dicom_number(dataset, "RescaleSlope")
    if slope == 0:
        raise ImageDecodeError("The DICOM RescaleSlope is 0: every pixel would be the same.")
    width = _dicom_number(dataset, "WindowWidth")
    _dicom_number(dataset, "WindowCenter")
    if width is not None and width < 1:
        raise ImageDecodeError(f"The DICOM WindowWidth is {width:g}; it must be at least 1.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = dataset.pixel_array
            if pixels.ndim != 2:
                raise ImageDecodeError("Only single-frame grayscale DICOM radiographs are accepted.", "unsupported")
            values = apply_modality_lut(pixels, dataset)
            values = apply_voi_lut(values, dataset)
    except ImageDecodeError:
        raise
    except Exception as error:  # pydicom raises many types for bad or unsupported pixel data
        raise ImageDecodeError(f"The DICOM pixel data cannot be read ({error}).") from None
    values = np.asarray(values, dtype=np.float32)
    if not np.isfinite(values).all():
        raise ImageDecodeError("The DICOM pixel values are not finite numbers.")
    image = _to_uint8(values)
    if dataset.get("PhotometricInterpretation", "") == "MONOCHROME1":
        image = 255 - image  # MONOCHROME1 stores bright air as high values; show it as on film
    image = np.asarray(_fit(Image.fromarray(image, mode="L"), max_side), dtype=np.uint8)
    return DecodedImage(image, columns, rows, "dicom")


def _dicom_int(dataset, keyword: str, default: int = 0) -> int:
    try:
        value = dataset.get(keyword, default)
        return int(value if value not in (None, "") else default)
    except (TypeError, ValueError, OverflowError):
        raise ImageDecodeError(f"The DICOM {keyword} is not a whole number.") from None


def _dicom_number(dataset, keyword: str) -> float | None:
    """A numeric header value (the first of several), checked: headers are written by anyone."""
    try:
        value = dataset.get(keyword)
    except Exception:  # a value pydicom cannot even convert
        raise ImageDecodeError(f"The DICOM {keyword} is not a number.") from None
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = value[0] if len(value) else None
        if value is None:
            return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ImageDecodeError(f"The DICOM {keyword} is not a number ({str(value)[:40]!r}).") from None
    if not math.isfinite(number):
        raise ImageDecodeError(f"The DICOM {keyword} is not a finite number.")
    return number


def _check_size(width: int, height: int, max_pixels: int, min_side: int = 1) -> None:
    if width <= 0 or height <= 0:
        raise ImageDecodeError("The image has no pixels.")
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"The image is {width}x{height} pixels, over the limit of {max_pixels:,} pixels.", "too_large"
        )
    if min(width, height) < min_side:
        raise ImageDecodeError(
            f"The image is {width}x{height} pixels; a radiograph needs at least {min_side} pixels on each side."
        )


def _to_uint8(values: np.ndarray) -> np.ndarray:
    low, high = float(np.min(values)), float(np.max(values))
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = values.astype(np.float32)  # float32 in place: a 16-bit 36 MP image stays near 150 MB
    scaled -= low
    scaled *= 255.0 / (high - low)
    np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8)


def encode_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def load_grayscale(path: str | Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.uint8)


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


def augmentation() -> v2.Transform:
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


def balanced_sampler(labels: Sequence[int], draws: int, generator: torch.Generator) -> WeightedRandomSampler:
    """Draws with replacement, each class as often as the others however many images it has."""
    classes = np.asarray(labels)
    weights = (1.0 / np.bincount(classes)[classes]).tolist()
    return WeightedRandomSampler(weights, draws, replacement=True, generator=generator)


class XrayDataModule(pl.LightningDataModule):
    """Training and validation loaders. `balanced` draws training images with class-balanced
    weights (with replacement, one epoch = as many draws as there are images), so a class with
    five images is seen as often as one with five thousand; `epoch_size` sets a minimum
    number of draws per epoch (small label sets are repeated, each copy augmented afresh)."""

    def __init__(
        self,
        train: Sequence[LabeledImage],
        val: Sequence[LabeledImage],
        size: int,
        batch_size: int,
        augment: bool = True,
        num_workers: int = 0,
        seed: int = 0,
        balanced: bool = False,
        cache: bool = True,
        epoch_size: int = 0,
        decode: Decoder = load_grayscale,
    ):
        super().__init__()
        self.train_items, self.val_items = list(train), list(val)
        self.size, self.batch_size, self.augment = size, batch_size, augment
        self.num_workers, self.seed = num_workers, seed
        self.balanced, self.cache, self.epoch_size = balanced, cache, epoch_size
        self.decode = decode

    def setup(self, stage: str | None = None) -> None:
        if not hasattr(self, "train_set"):
            self.train_set = XrayDataset(
                self.train_items, self.size, augment=self.augment, cache=self.cache, decode=self.decode
            )
            self.val_set = XrayDataset(self.val_items, self.size, augment=False, cache=self.cache, decode=self.decode)

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        draws = max(len(self.train_set), self.epoch_size)
        sampler: Sampler
        if self.balanced:
            sampler = balanced_sampler(self.train_set.labels, draws, generator)
        elif draws > len(self.train_set):
            sampler = RandomSampler(self.train_set, replacement=True, num_samples=draws, generator=generator)
        else:
            sampler = RandomSampler(self.train_set, generator=generator)
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val_set,
            batch_size=self.batch_size * 2,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
