"""DICOM radiographs: what is refused (modality, frames, bits, colour, body part), and the pixel
handling of MONOCHROME1, 12-in-16-bit, signed values and the compressed transfer syntaxes."""

import io
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import JPEG2000Lossless, RLELossless

from learning.decoding import DicomRules, ImageDecodeError, check_dicom, decode_dicom, decode_radiograph, read_dicom
from tests import synthetic

LIMIT = 50_000_000


def _dataset(**attributes) -> pydicom.Dataset:
    ds = read_dicom(synthetic.dicom_bytes(synthetic.radiograph(1, size=64, seed=3)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sloppy values (lower-case CS) are what real headers hold
        for key, value in attributes.items():
            setattr(ds, key, value)
    return ds


def _bytes(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"Modality": "CT"}, "Modality CT is not accepted; medal reads chest radiographs (CR, DX)"),
        ({"Modality": "MR"}, "Modality MR is not accepted"),
        ({"Modality": ""}, "names no Modality"),
        ({"NumberOfFrames": 3}, "Multi-frame DICOM images are not accepted (NumberOfFrames 3)"),
        ({"BitsAllocated": 1, "BitsStored": 1, "HighBit": 0}, "1-bit DICOM images are not accepted"),
        ({"SamplesPerPixel": 3, "PhotometricInterpretation": "RGB"}, "Colour DICOM images are not accepted"),
        ({"PhotometricInterpretation": "PALETTE COLOR"}, "Colour DICOM images are not accepted"),
        ({"BodyPartExamined": "SKULL"}, "BodyPartExamined SKULL is not a chest"),
        ({"BodyPartExamined": "hand"}, "BodyPartExamined HAND is not a chest"),
        ({"BodyPartExamined": "KNEE"}, "BodyPartExamined KNEE is not a chest"),
        ({"BodyPartExamined": "ABDOMEN"}, "BodyPartExamined ABDOMEN is not a chest"),
        ({"BurnedInAnnotation": "YES"}, "burned-in annotation"),
    ],
)
def test_what_is_not_a_chest_radiograph_is_refused_as_unsupported(attributes, message):
    with pytest.raises(ImageDecodeError, match=message.replace("(", r"\(").replace(")", r"\)")) as refused:
        check_dicom(_dataset(**attributes))
    assert refused.value.kind == "unsupported"


@pytest.mark.parametrize("body_part", ["CHEST", "THORAX", "LUNG", "", None])
def test_chest_and_missing_body_parts_are_accepted(body_part):
    ds = _dataset(Modality="DX")
    if body_part is not None:
        ds.BodyPartExamined = body_part
    check_dicom(ds)  # no exception
    assert decode_dicom(ds, LIMIT).pixels.shape == (64, 64)


def test_config_rules_can_allow_more():
    rules = DicomRules(modalities=("CR", "DX", "OT"), body_parts_refused=("SKULL",))
    check_dicom(_dataset(Modality="OT", BodyPartExamined="SHOULDER"), rules)
    with pytest.raises(ImageDecodeError, match="SKULL"):
        check_dicom(_dataset(BodyPartExamined="SKULL"), rules)


def test_decode_radiograph_applies_the_rules_to_dicom_bytes():
    with pytest.raises(ImageDecodeError, match="Modality CT") as refused:
        decode_radiograph(_bytes(_dataset(Modality="CT")), LIMIT)
    assert refused.value.kind == "unsupported"


def test_monochrome1_is_inverted():
    image = synthetic.radiograph(1, size=64, seed=4)
    plain = decode_radiograph(synthetic.dicom_bytes(image), LIMIT).pixels
    inverted = decode_radiograph(synthetic.dicom_bytes(image, photometric="MONOCHROME1"), LIMIT).pixels
    assert np.abs(plain.astype(int) + inverted.astype(int) - 255).max() <= 1


def _twelve_bit(signed: bool = False) -> tuple[pydicom.Dataset, np.ndarray]:
    rng = np.random.default_rng(5)
    values = rng.integers(0, 4096, size=(48, 40)).astype(np.int32)
    ds = _dataset()
    ds.Rows, ds.Columns = values.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    if signed:
        values -= 2048
        ds.PixelRepresentation = 1
        ds.PixelData = values.astype(np.int16).tobytes()
    else:
        ds.PixelData = values.astype(np.uint16).tobytes()
    return ds, values


@pytest.mark.parametrize("signed", [False, True])
def test_twelve_bits_stored_in_sixteen_keep_their_order(signed):
    ds, values = _twelve_bit(signed)
    pixels = decode_radiograph(_bytes(ds), LIMIT).pixels
    expected = np.rint((values - values.min()) * 255.0 / (values.max() - values.min()))
    assert pixels.shape == (48, 40)
    assert np.abs(pixels.astype(int) - expected).max() <= 1


def test_window_from_the_header_is_applied():
    ds, values = _twelve_bit()
    ds.WindowCenter, ds.WindowWidth = 2048, 1024
    pixels = decode_radiograph(_bytes(ds), LIMIT).pixels
    assert pixels[values < 1500].max() == 0 and pixels[values > 2600].min() == 255


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_lossless_compression_round_trips_to_the_same_pixels(syntax):
    ds, _ = _twelve_bit()
    plain = decode_radiograph(_bytes(ds), LIMIT).pixels
    ds.compress(syntax)
    data = _bytes(ds)
    assert pydicom.dcmread(io.BytesIO(data)).file_meta.TransferSyntaxUID == syntax
    assert np.array_equal(decode_radiograph(data, LIMIT).pixels, plain)


@pytest.mark.parametrize(
    "name", ["MR_small_jpeg_ls_lossless.dcm", "JPEGLSNearLossless_16.dcm", "JPGExtended.dcm", "MR_small_RLE.dcm"]
)
def test_files_encoded_by_other_tools_decode(name):
    """pydicom's own sample files (JPEG-LS, JPEG extended 12-bit, RLE), relabelled as a radiograph."""
    ds = pydicom.dcmread(get_testdata_file(name))
    ds.Modality = "CR"
    reference = ds.pixel_array.astype(np.float64)
    pixels = decode_radiograph(_bytes(ds), LIMIT).pixels
    assert pixels.shape == reference.shape[-2:]
    assert np.corrcoef(pixels.ravel(), reference.ravel())[0, 1] > 0.95


@pytest.mark.parametrize("defined_length", [False, True], ids=["undefined lengths", "defined lengths"])
def test_sequences_nested_500_deep_are_refused_naming_the_reason(defined_length):
    data = synthetic.dicom_nested(synthetic.radiograph(1, size=64, seed=3), 500, defined_length)
    reason = "^The DICOM file nests its sequences more than 32 levels deep"
    with pytest.raises(ImageDecodeError, match=reason) as refused:
        decode_radiograph(data, LIMIT)
    assert refused.value.kind == "corrupt"  # a 400


@pytest.mark.parametrize("defined_length", [False, True], ids=["undefined lengths", "defined lengths"])
def test_sequences_nested_as_deep_as_allowed_are_read(defined_length):
    data = synthetic.dicom_nested(synthetic.radiograph(1, size=64, seed=3), 32, defined_length)
    assert decode_radiograph(data, LIMIT).pixels.shape == (64, 64)
