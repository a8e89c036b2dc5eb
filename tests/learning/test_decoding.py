"""Decoding radiographs: PNG, JPEG, DICOM (windowing, MONOCHROME1) and bad input."""

import io

import numpy as np
import pytest
from PIL import Image

from learning.decoding import ImageDecodeError, decode_image
from tests import synthetic

LIMIT = 10_000_000


def test_png_and_jpeg_decode_to_grayscale():
    image = synthetic.radiograph(1, size=48)
    png = decode_image(synthetic.png_bytes(image), LIMIT)
    assert png.shape == (48, 48) and png.dtype == np.uint8
    assert np.array_equal(png, image)
    jpeg = decode_image(synthetic.jpeg_bytes(image), LIMIT)
    assert jpeg.shape == (48, 48)
    assert np.abs(jpeg.astype(int) - image.astype(int)).mean() < 8


def test_rgb_png_becomes_grayscale():
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), (200, 100, 50)).save(buffer, format="PNG")
    assert decode_image(buffer.getvalue(), LIMIT).shape == (10, 20)


def test_sixteen_bit_png_is_scaled_to_eight_bits():
    ramp = np.tile(np.linspace(0, 4095, 64, dtype=np.uint16), (8, 1))
    buffer = io.BytesIO()
    Image.fromarray(ramp).save(buffer, format="PNG")
    decoded = decode_image(buffer.getvalue(), LIMIT)
    assert decoded.min() == 0 and decoded.max() == 255


def test_dicom_monochrome2_keeps_orientation_of_intensity():
    image = synthetic.radiograph(1, size=32)
    decoded = decode_image(synthetic.dicom_bytes(image), LIMIT)
    assert np.corrcoef(decoded.ravel(), image.ravel())[0, 1] > 0.99


def test_dicom_monochrome1_is_inverted():
    image = synthetic.radiograph(1, size=32)
    decoded = decode_image(synthetic.dicom_bytes(image, photometric="MONOCHROME1"), LIMIT)
    assert np.corrcoef(decoded.ravel(), image.ravel())[0, 1] < -0.99


def test_dicom_window_clips_outside_values():
    image = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1))  # 0..252 ramp
    centre = 128 * 257.0  # the 16-bit value of mid-gray
    decoded = decode_image(synthetic.dicom_bytes(image, window=(centre, 64 * 257.0)), LIMIT)
    # outside the window everything is black or white; inside it is a ramp
    assert decoded[0, 0] == 0 and decoded[0, -1] == 255
    assert (decoded[0] == 0).sum() > 10 and (decoded[0] == 255).sum() > 10


@pytest.mark.parametrize(
    "data, kind, words",
    [
        (b"", "corrupt", "empty"),
        (b"hello, this is not an image at all", "unsupported", "not a PNG"),
        (synthetic.png_bytes(synthetic.radiograph(0))[:60], "corrupt", "truncated"),
    ],
)
def test_bad_bytes_get_clear_errors(data, kind, words):
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(data, LIMIT)
    assert caught.value.kind == kind
    assert words in str(caught.value)


def test_gif_is_refused_as_unsupported():
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, format="GIF")
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(buffer.getvalue(), LIMIT)
    assert caught.value.kind == "unsupported"


def test_image_over_pixel_limit_is_refused_before_decoding():
    data = synthetic.png_bytes(np.zeros((200, 200), dtype=np.uint8))
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(data, max_pixels=100 * 100)
    assert caught.value.kind == "too_large"
    assert "200x200" in str(caught.value)


def test_dicom_without_pixel_data_is_refused():
    data = synthetic.dicom_bytes(synthetic.radiograph(0), with_pixels=False)
    with pytest.raises(ImageDecodeError, match="no pixel data"):
        decode_image(data, LIMIT)


def test_malformed_dicom_is_refused():
    data = synthetic.dicom_bytes(synthetic.radiograph(0))
    with pytest.raises(ImageDecodeError):
        decode_image(data[:400], LIMIT)
