"""A corpus of hostile and awkward uploads, made here (no binaries in the repository).

Each entry says what a careful server does with it: ingest it (with a prediction) or refuse it
with a given 4xx (or any 4xx, where the exact refusal depends on the decoder's view of it)."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from tests import synthetic

OK = "ok"
ANY_4XX = "4xx"


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    expect: str | int  # OK, ANY_4XX or the exact status
    filename: str = "upload.png"


def _gray(seed: int, size: tuple[int, int] = (48, 40)) -> np.ndarray:
    """A distinct radiograph-like image per seed (distinct bytes: no case is a re-upload of another)."""
    base = synthetic.radiograph(seed % 2, size=max(size), seed=1000 + seed)
    return np.ascontiguousarray(base[: size[0], : size[1]])


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png(seed: int, mode: str = "L", size: tuple[int, int] = (48, 40), **options) -> bytes:
    pixels = _gray(seed, size)
    image = Image.fromarray(pixels, mode="L")
    if mode == "I;16":
        image = Image.fromarray(pixels.astype(np.uint16) * 257)
    elif mode != "L":
        image = image.convert(mode)
    return _save(image, "PNG", **options)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _raw_png(
    width: int, height: int, extra: list[bytes] = (), idat: bytes | None = None, bad_crc: bool = False
) -> bytes:
    """A PNG built chunk by chunk: headers that lie, chunks that inflate, checksums that fail."""
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    if bad_crc:
        ihdr = ihdr[:-4] + b"\0\0\0\0"
    rows = (
        idat if idat is not None else zlib.compress(b"".join(b"\0" + bytes([i % 256]) * width for i in range(height)))
    )
    return b"\x89PNG\r\n\x1a\n" + ihdr + b"".join(extra) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def _inflating(kind: bytes) -> bytes:
    """A text or profile chunk of 64 KB that inflates to 64 MB."""
    bomb = zlib.compress(b"\0" * (64 * 1024 * 1024), 9)
    if kind == b"zTXt":
        return _chunk(b"zTXt", b"Comment\0\0" + bomb)
    if kind == b"iTXt":
        return _chunk(b"iTXt", b"Comment\0\x01\0\0\0" + bomb)
    return _chunk(b"iCCP", b"profile\0\0" + bomb)


def _jpeg(seed: int, mode: str = "L", size: tuple[int, int] = (48, 40), **options) -> bytes:
    image = Image.fromarray(_gray(seed, size), mode="L")
    return _save(image if mode == "L" else image.convert(mode), "JPEG", quality=90, **options)


def _dicom_dataset(seed: int, **kwargs):
    import pydicom

    return pydicom.dcmread(io.BytesIO(synthetic.dicom_bytes(_gray(seed), **kwargs)))


def _dicom_save(ds) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _dicom_with(seed: int, **attributes) -> bytes:
    ds = _dicom_dataset(seed)
    for key, value in attributes.items():
        setattr(ds, key, value)
    return _dicom_save(ds)


def _dicom_raw_value(seed: int, keyword: str, value: bytes) -> bytes:
    """A numeric header holding text: pydicom will not write one, so the bytes are patched."""
    placeholder = b"7.25"  # as long as the value put in its place
    assert len(value) == len(placeholder)
    data = _dicom_with(seed, **{keyword: placeholder.decode()})
    assert data.count(placeholder) == 1
    return data.replace(placeholder, value)


def _dicom_multiframe(seed: int, frames: int = 3) -> bytes:
    ds = _dicom_dataset(seed)
    one = bytes(ds.PixelData)
    ds.NumberOfFrames = frames
    ds.PixelData = one * frames
    return _dicom_save(ds)


def _dicom_encapsulated(seed: int, syntax: str) -> bytes:
    """Compressed pixel data: RLE by pydicom's own encoder; JPEG and JPEG 2000 by Pillow,
    encapsulated as a PACS would send them."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, RLELossless

    if syntax == "rle":
        ds = _dicom_dataset(seed)
        ds.compress(RLELossless)
        return _dicom_save(ds)
    ds = _dicom_dataset(seed, bits=8)
    image = Image.fromarray(_gray(seed), mode="L")
    if syntax == "jpeg":
        frame, uid = _save(image, "JPEG", quality=90), JPEGBaseline8Bit
    else:
        frame, uid = _save(image, "JPEG2000", no_jp2=True, irreversible=False), JPEG2000Lossless
    ds.file_meta.TransferSyntaxUID = uid
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    if syntax == "jpeg":
        ds.PhotometricInterpretation = "MONOCHROME2"
    return _dicom_save(ds)


def _svg() -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><script>alert(1)</script></svg>'


def _zip() -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return buffer.getvalue()


def _animated(fmt: str) -> bytes:
    frames = [Image.fromarray(_gray(900 + i), mode="L") for i in range(3)]
    return _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def corpus() -> list[Case]:
    png = _png(1)
    jpeg = _jpeg(2, size=(96, 80))
    dicom = synthetic.dicom_bytes(_gray(3))
    cases = [
        # empty, not images, and images renamed
        Case("zero-byte file", b"", 400),
        Case("plain text", b"this is not an image at all", 415),
        Case("HTML renamed .png", b"<!doctype html><html><script>alert(1)</script></html>", 415),
        Case("SVG renamed .png", _svg(), 415),
        Case("SVG with XML prolog", b'<?xml version="1.0"?>' + _svg(), 415),
        Case("PDF renamed .png", b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF", 415),
        Case("ZIP renamed .png", _zip(), 415),
        Case("GIF", _save(Image.fromarray(_gray(4), mode="L"), "GIF"), 415),
        Case("animated GIF", _animated("GIF"), 415),
        Case("animated PNG (APNG)", _animated("PNG"), 415),
        Case("BMP", _save(Image.fromarray(_gray(5), mode="L"), "BMP"), 415),
        Case("TIFF", _save(Image.fromarray(_gray(6), mode="L"), "TIFF"), 415),
        Case("WebP", _save(Image.fromarray(_gray(7), mode="L"), "WEBP"), 415),
        # truncated
        Case("PNG signature only", png[:8], ANY_4XX),
        Case("PNG cut in the header", png[:20], ANY_4XX),
        Case("PNG cut at half", png[: len(png) // 2], 400),
        Case("PNG without its IEND (all rows present)", png[:-12], OK),
        Case("JPEG start marker only", jpeg[:2], ANY_4XX),
        Case("JPEG cut at a tenth", jpeg[: len(jpeg) // 10], ANY_4XX),
        Case("JPEG cut at half", jpeg[: len(jpeg) // 2], 400),
        Case("DICOM preamble only", b"\0" * 128 + b"DICM", 400),
        Case("DICOM cut at half", dicom[: len(dicom) // 2], 400),
        # lying headers and bombs
        Case("PNG declaring 30000x30000", _raw_png(30000, 30000, idat=zlib.compress(b"\0" * 1000)), 413),
        Case("PNG declaring 8000x8000 (over max_pixels)", _raw_png(8000, 8000, idat=zlib.compress(b"\0" * 1000)), 413),
        Case("PNG declaring 0x10", _raw_png(0, 10, idat=zlib.compress(b"")), ANY_4XX),
        Case("PNG zTXt inflating to 64 MB", _raw_png(40, 40, [_inflating(b"zTXt")]), 400),
        Case("PNG iTXt inflating to 64 MB", _raw_png(40, 40, [_inflating(b"iTXt")]), 400),
        Case("PNG iCCP inflating to 64 MB", _raw_png(40, 40, [_inflating(b"iCCP")]), ANY_4XX),
        Case("PNG with a broken header checksum", _raw_png(40, 40, bad_crc=True), 415),
        Case("PNG whose rows are short", _raw_png(40, 40, idat=zlib.compress(b"\0" * 50)), 400),
        Case("PNG whose rows are not zlib", _raw_png(40, 40, idat=b"not zlib data at all"), 400),
        # too small to be a radiograph (prediction once crashed on these with a 500)
        Case("PNG 1x1", _png(8, size=(1, 1)), 400),
        Case("PNG 1 px tall", _png(9, size=(1, 300)), 400),
        Case("PNG 2 px tall", _png(10, size=(2, 300)), 400),
        Case("PNG 1 px wide", _png(11, size=(300, 1)), 400),
        Case("PNG 2 px wide", _png(12, size=(300, 2)), 400),
        Case("JPEG 2 px tall", _jpeg(13, size=(2, 200)), 400),
        Case("PNG 15x15", _png(14, size=(15, 15)), 400),
        Case("DICOM 1x1", synthetic.dicom_bytes(np.full((1, 1), 90, dtype=np.uint8)), 400),
        # broken DICOM headers
        Case("DICOM WindowWidth 0", synthetic.dicom_bytes(_gray(15), window=(20000.0, 0.0)), 400),
        Case("DICOM WindowWidth negative", synthetic.dicom_bytes(_gray(16), window=(20000.0, -40.0)), 400),
        Case("DICOM RescaleSlope not a number", _dicom_raw_value(17, "RescaleSlope", b"abcd"), 400),
        Case("DICOM RescaleIntercept not a number", _dicom_raw_value(18, "RescaleIntercept", b"x1y2"), 400),
        Case("DICOM WindowCenter not a number", _dicom_raw_value(19, "WindowCenter", b"wide"), 400),
        Case("DICOM RescaleSlope NaN", _dicom_raw_value(20, "RescaleSlope", b"NaN "), 400),
        Case("DICOM RescaleSlope 0", _dicom_with(21, RescaleSlope="0", RescaleIntercept="0"), 400),
        Case("DICOM without pixel data", synthetic.dicom_bytes(_gray(22), with_pixels=False), 400),
        Case("DICOM Rows 0", _dicom_with(23, Rows=0), 400),
        Case("DICOM declaring 30000x30000", _dicom_with(24, Rows=30000, Columns=30000), 413),
        Case("DICOM pixel data shorter than declared", _dicom_with(25, Rows=400, Columns=400), 400),
        Case("DICOM BitsAllocated 3", _dicom_with(26, BitsAllocated=3), ANY_4XX),
        Case("DICOM in colour", _dicom_with(27, SamplesPerPixel=3, PlanarConfiguration=0), ANY_4XX),
        Case("DICOM sequences nested 500 deep", synthetic.dicom_nested(_gray(60), 500), 400),
        Case("DICOM sequences nested 500 deep (defined lengths)", synthetic.dicom_nested(_gray(61), 500, True), 400),
        # polyglots: the image part is what is stored, never the rest
        Case("PNG + ZIP polyglot", _png(28) + _zip(), OK),
        Case("JPEG + HTML polyglot", _jpeg(29) + b"<html><script>alert(1)</script></html>", OK),
        # unusual but valid encodings: ingested, with a prediction
        Case("PNG 8-bit gray", _png(30), OK),
        Case("PNG 16-bit gray", _png(31, mode="I;16"), OK),
        Case("PNG palette", _png(32, mode="P"), OK),
        Case("PNG RGB", _png(33, mode="RGB"), OK),
        Case("PNG RGBA", _png(34, mode="RGBA"), OK),
        Case("PNG gray + alpha", _png(35, mode="LA"), OK),
        Case("PNG 1-bit", _png(36, mode="1"), OK),
        Case("PNG interlaced", _interlaced(37), OK),
        Case("PNG 16x16 (the smallest accepted)", _png(38, size=(16, 16)), OK),
        Case("JPEG gray", _jpeg(39), OK),
        Case("JPEG RGB", _jpeg(40, mode="RGB"), OK),
        Case("JPEG CMYK", _jpeg(41, mode="CMYK"), OK),
        Case("JPEG progressive", _jpeg(42, progressive=True), OK),
        Case("DICOM 16-bit", synthetic.dicom_bytes(_gray(43)), OK),
        Case("DICOM 8-bit", synthetic.dicom_bytes(_gray(44), bits=8), OK),
        Case("DICOM MONOCHROME1", synthetic.dicom_bytes(_gray(45), photometric="MONOCHROME1"), OK),
        Case("DICOM multi-frame", _dicom_multiframe(46), 415),  # one radiograph per file (issue 14)
        Case("DICOM RLE lossless", _dicom_encapsulated(47, "rle"), OK),
        Case("DICOM JPEG baseline", _dicom_encapsulated(48, "jpeg"), OK),
        Case("DICOM JPEG 2000 lossless", _dicom_encapsulated(49, "j2k"), OK),
        # file names are never used for storage
        Case("name with ../ traversal", _png(50), OK, "../../../../etc/cron.d/evil.png"),
        Case("name with backslash traversal", _png(51), OK, "..\\..\\windows\\system32\\evil.png"),
        Case("name with a NUL", _png(52), OK, "x-ray\x00.exe.png"),
        Case("name 4000 characters long", _png(53), OK, "a" * 4000 + ".png"),
        Case("name of control characters", _png(54), OK, "\r\n\t.png"),
    ]
    return cases


def _interlaced(seed: int) -> bytes:
    """Adam7-interlaced PNG: Pillow writes none, so the rows are laid out in seven passes here."""
    pixels = _gray(seed)
    height, width = pixels.shape
    passes = [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1)]
    raw = b""
    for y0, x0, dy, dx in passes:
        sub = pixels[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\0" + row.tobytes() for row in sub)
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 1))
    return b"\x89PNG\r\n\x1a\n" + ihdr + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")
