"""Grad-CAM on a tiny model: the map has the image's shape and peaks where the lesion was drawn."""

import numpy as np
import pytest
import torch

from learning.data import to_tensor
from learning.explain import explain, locate, overlay_png
from learning.model import ModelSpec, XrayNet


def lesion_image(rng, lesion: bool, size: int = 32) -> np.ndarray:
    image = rng.normal(60, 10, (size, size))
    if lesion:  # a bright opacity in the image's lower left = the patient's right lower zone
        y, x = np.mgrid[0:size, 0:size]
        image += 150 * np.exp(-((x - 8) ** 2 + (y - 24) ** 2) / 12.0)
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def trained_net():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = XrayNet(ModelSpec("small_cnn", ["normal", "pneumonia"], 32, dropout=0.0), pretrained=False)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(60):
        labels = rng.integers(0, 2, 32)
        # trained as served: films of varied width, letterboxed by the one transform
        images = torch.stack(
            [to_tensor(lesion_image(rng, bool(label))[:, : rng.integers(20, 33)], 32) for label in labels]
        )
        loss = torch.nn.functional.cross_entropy(net(images), torch.tensor(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net.eval()


def test_heatmap_has_the_image_shape_and_peaks_at_the_lesion(trained_net):
    rng = np.random.default_rng(5)
    image = lesion_image(rng, True)
    big = np.kron(image, np.ones((3, 3), dtype=np.uint8))[:, :72]  # 96 x 72: not square, not 32
    explanation = explain(trained_net, big, 32)  # letterboxed, padding cut off
    assert explanation.heatmap.shape == big.shape
    assert 0.0 <= explanation.heatmap.min() and explanation.heatmap.max() <= 1.0
    assert explanation.predicted_index == 1 and explanation.probabilities[1] > 0.5
    assert abs(explanation.probabilities.sum() - 1) < 1e-5
    peak_y, peak_x = np.unravel_index(np.argmax(explanation.heatmap), big.shape)
    assert peak_y >= big.shape[0] * 0.5 and peak_x < big.shape[1] * 0.5  # lower left of the image
    assert explanation.location.side == "right lung"  # the patient's right
    assert explanation.location.zone == "lower"


def test_location_words_follow_the_radiological_convention():
    heat = np.zeros((30, 30), dtype=np.float32)
    heat[0:8, 20:30] = 1.0  # image upper right = patient's left upper zone
    location = locate(heat)
    assert (location.side, location.zone) == ("left lung", "upper")
    assert "patient's left lung" in location.description and "left of the image" in location.description
    heat = np.ones((30, 30), dtype=np.float32)
    assert locate(heat).side == "both lungs"
    assert "flat" in locate(np.zeros((30, 30), dtype=np.float32)).description


def test_overlay_is_a_transparent_png():
    heat = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    png = overlay_png(np.zeros((10, 10), dtype=np.uint8), heat)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(png)) as image:
        assert image.mode == "RGBA" and image.size == (10, 10)
        alpha = np.asarray(image)[..., 3]
        assert alpha[0, 0] == 0 and alpha[-1, -1] == 255


@pytest.mark.parametrize("shape", [(1, 1), (1, 40), (2, 40), (40, 1), (40, 2), (2, 2)])
def test_explains_images_only_one_or_two_pixels_tall_or_wide(trained_net, shape):
    """array_split of one or two rows into thirds once crashed prediction with a 500."""
    image = np.full(shape, 90, dtype=np.uint8)
    image[0, 0] = 200
    explanation = explain(trained_net, image, 32)
    assert explanation.heatmap.shape == shape
    assert explanation.location.zone in ("upper", "middle", "lower")
    assert abs(explanation.probabilities.sum() - 1) < 1e-5


def test_location_of_a_two_row_map_names_the_row_that_holds_the_heat():
    heat = np.zeros((2, 30), dtype=np.float32)
    heat[1, :10] = 1.0
    location = locate(heat)
    assert (location.side, location.zone) == ("right lung", "lower")
    assert location.share == 1.0
