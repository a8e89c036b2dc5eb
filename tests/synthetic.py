"""Small synthetic chest-X-ray-like images made in the tests (no real data in unit tests)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

CLASSES = ["normal", "pneumonia"]


def radiograph(label: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """A dark chest with two lung fields; class 1 adds a bright opacity in the lower right lung
    field of the patient (the image's lower left)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    image = 60 + 25 * rng.standard_normal((size, size))
    lungs = ((x - 0.3) ** 2 / 0.04 + (y - 0.5) ** 2 / 0.12 < 1) | ((x - 0.7) ** 2 / 0.04 + (y - 0.5) ** 2 / 0.12 < 1)
    image[~lungs] += 90
    if label == 1:
        cx, cy = 0.3 + 0.05 * rng.standard_normal(), 0.7 + 0.05 * rng.standard_normal()
        image += 140 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.008)
    return np.clip(image, 0, 255).astype(np.uint8)


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image, mode="L").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def dataset(n: int, size: int = 32, seed: int = 0) -> tuple[list[np.ndarray], list[int]]:
    labels = [i % 2 for i in range(n)]
    return [radiograph(label, size, seed * 10_000 + i) for i, label in enumerate(labels)], labels


def dicom_bytes(
    image: np.ndarray,
    photometric: str = "MONOCHROME2",
    bits: int = 16,
    window: tuple[float, float] | None = None,
    with_pixels: bool = True,
    patient_name: str = "Doe^Jane",
) -> bytes:
    """A minimal valid DICOM file (Secondary Capture) holding `image` scaled to `bits` bits."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import (
        ExplicitVRLittleEndian,
        SecondaryCaptureImageStorage,
        generate_uid,
    )

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.Modality = patient_name, "123456", "CR"
    ds.Rows, ds.Columns = image.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if with_pixels:
        scale = (2**bits - 1) / 255.0
        dtype = np.uint16 if bits == 16 else np.uint8
        ds.PixelData = (image.astype(np.float64) * scale).astype(dtype).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def dicom_nested(image: np.ndarray, depth: int, defined_length: bool = False) -> bytes:
    """A CR file (dicom_bytes) whose header nests `depth` sequences, each item holding the next
    ((0008,1140) Referenced Image Sequence), with undefined or defined lengths. The nesting is
    written byte by byte: pydicom's own writer gives up long before 500 levels."""
    import struct

    plain = dicom_bytes(image)
    head = struct.pack("<HH", 0x0008, 0x1140) + b"SQ\0\0"
    if defined_length:
        body = b""
        for _ in range(depth):
            item = struct.pack("<HHI", 0xFFFE, 0xE000, len(body)) + body
            body = head + struct.pack("<I", len(item)) + item
    else:
        undefined = 0xFFFFFFFF
        opening = head + struct.pack("<I", undefined) + struct.pack("<HHI", 0xFFFE, 0xE000, undefined)
        closing = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
        body = opening * depth + closing * depth
    at = plain.index(struct.pack("<HH", 0x0010, 0x0010) + b"PN")  # before PatientName: tags stay in order
    return plain[:at] + body + plain[at:]
