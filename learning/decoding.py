"""Decoding chest X-rays: PNG, JPEG and DICOM bytes to 2-D uint8 grayscale pixels, the DICOM rules
(a chest radiograph, of a sane size and nesting) and the one PNG encoding of what is kept."""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image, ImageFile, UnidentifiedImageError
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut

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
