"""The one transform: aspect ratio kept (letterbox), identical in training, scoring and serving."""

import numpy as np
import pytest
import torch
from PIL import Image

from learning.data import LabeledImage, TensorImages, XrayDataset, letterbox, letterbox_box, to_tensor
from learning.decoding import load_grayscale
from tests import synthetic


def test_wide_image_is_padded_top_and_bottom_not_squashed():
    image = np.full((50, 100), 200, dtype=np.uint8)  # twice as wide as tall
    tensor = to_tensor(image, 64)
    assert tensor.shape == (1, 64, 64) and tensor.dtype == torch.float32
    rows = tensor[0].mean(dim=1)
    assert torch.all(rows[:16] == 0) and torch.all(rows[-16:] == 0)  # padding bands of 16 px
    assert torch.allclose(tensor[0, 16:48], torch.full((32, 64), 200 / 255))
    assert letterbox_box(50, 100, 64) == (16, 0, 32, 64)


def test_tall_image_is_padded_left_and_right():
    image = np.full((90, 30), 255, dtype=np.uint8)
    pixels = letterbox(image, 60)
    assert pixels.dtype == np.uint8 and pixels.shape == (60, 60)
    assert letterbox_box(90, 30, 60) == (0, 20, 60, 20)
    assert (pixels[:, :20] == 0).all() and (pixels[:, 40:] == 0).all()
    assert (pixels[:, 20:40] == 255).all()


def test_a_circle_stays_round():
    y, x = np.mgrid[0:80, 0:160]
    image = (((x - 80) ** 2 + (y - 40) ** 2) < 30**2).astype(np.uint8) * 255
    pixels = letterbox(image, 64) > 127
    rows, cols = np.nonzero(pixels)
    height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    assert abs(height - width) <= 1  # squashing would make it twice as tall as wide


def test_square_image_of_the_model_size_is_unchanged():
    image = synthetic.radiograph(1, size=32)
    assert np.array_equal(letterbox(image, 32), image)
    assert torch.equal(to_tensor(image, 32)[0], torch.from_numpy(image.astype(np.float32) / 255))


@pytest.mark.parametrize("cache", [True, False])
def test_training_scoring_and_serving_see_identical_tensors(tmp_path, cache):
    image = synthetic.radiograph(1, size=48)
    wide = np.concatenate([image, image[:, :20]], axis=1)  # 48 x 68, not square
    path = tmp_path / "wide.png"
    Image.fromarray(wide, mode="L").save(path)
    served = to_tensor(wide, 40)  # the upload path (decode -> to_tensor)
    trained, label = XrayDataset([LabeledImage(str(path), 1, "p1")], 40, augment=False, cache=cache)[0]
    scored = TensorImages([str(path)], 40)[0]
    assert label == 1
    assert torch.equal(trained, served) and torch.equal(scored, served)
    assert torch.equal(to_tensor(load_grayscale(path), 40), served)


def test_dataset_holds_uint8_not_floats(tmp_path):
    paths = []
    for index in range(5):
        path = tmp_path / f"{index}.png"
        Image.fromarray(synthetic.radiograph(index % 2, size=40, seed=index), mode="L").save(path)
        paths.append(LabeledImage(str(path), index % 2))
    dataset = XrayDataset(paths, 32)
    assert dataset._pixels.dtype == np.uint8 and dataset._pixels.nbytes == 5 * 32 * 32
    augmented = XrayDataset(paths, 32, augment=True)
    image, _ = augmented[0]
    assert image.shape == (1, 32, 32) and 0.0 <= image.min() and image.max() <= 1.0


def test_labeled_image_keeps_its_two_argument_form():
    item = LabeledImage("x.png", 2)
    assert item.group is None and LabeledImage("x.png", 2, "patient-7").group == "patient-7"
