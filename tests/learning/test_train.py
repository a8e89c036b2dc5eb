"""fine_tune on tiny synthetic images: head-first training, class balance, patient-grouped
validation; CPU speed-ups (channels_last, one decode per film)."""

import copy
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from learning.data import LabeledImage, stratum_weights
from learning.datamodule import XrayDataModule
from learning.decoding import load_grayscale
from learning.model import ModelSpec, XrayNet
from learning.predict import score_pool
from learning.train import TrainSpec, fine_tune

SIZE = 16


def _image(kind: int, rng) -> np.ndarray:
    base = rng.normal(60, 12, (SIZE, SIZE))
    if kind == 1:
        base[:, : SIZE // 2] += 90  # bright left half
    elif kind == 2:
        base += 160  # a bright film: the rare class
    return np.clip(base, 0, 255).astype(np.uint8)


def _items(
    tmp_path, counts: dict[int, int], seed: int = 0, prefix: str = "img", per_patient: int = 2
) -> list[LabeledImage]:
    rng = np.random.default_rng(seed)
    items = []
    for kind, count in counts.items():
        for index in range(count):
            path = tmp_path / f"{prefix}-{kind}-{index}.png"
            Image.fromarray(_image(kind, rng), mode="L").save(path)
            items.append(LabeledImage(str(path), kind, f"{prefix}-patient-{kind}-{index // per_patient}"))
    return items


def test_frozen_epochs_leave_the_backbone_untouched(tmp_path):
    torch.manual_seed(0)
    spec = ModelSpec("small_cnn", ["a", "b", "c"], SIZE, dropout=0.0)
    start = XrayNet(spec, pretrained=False)
    result = fine_tune(
        TrainSpec(
            model=spec,
            train=_items(tmp_path, {0: 12, 1: 12, 2: 6}),
            init_from=start,
            val=_items(tmp_path, {0: 2, 1: 2, 2: 2}, seed=1, prefix="val"),
            max_epochs=1,
            freeze_backbone_epochs=1,
            batch_size=8,
            balance="sampler",
            accelerator="cpu",
            patience=5,
        )
    )
    before, after = start.state_dict(), result.net.state_dict()
    for key in before:
        if key.startswith("features."):
            assert torch.equal(before[key], after[key]), key  # weights and BatchNorm statistics
    assert not torch.equal(before["head.weight"], after["head.weight"])
    assert all(p.requires_grad for p in result.net.parameters())  # unfrozen for the next user


def test_a_class_with_five_images_is_learned(tmp_path):
    torch.manual_seed(0)
    spec = ModelSpec("small_cnn", ["normal", "common", "rare"], SIZE, dropout=0.0)
    train = _items(tmp_path, {0: 40, 1: 40, 2: 5})
    val = _items(tmp_path, {0: 6, 1: 6, 2: 2}, seed=1, prefix="val")
    result = fine_tune(
        TrainSpec(
            model=spec,
            train=train,
            val=val,
            pretrained=False,
            max_epochs=4,
            freeze_backbone_epochs=1,
            balance="sampler",
            batch_size=16,
            learning_rate=3e-3,
            epoch_size=160,
            accelerator="cpu",
            patience=5,
        )
    )
    test = _items(tmp_path, {2: 10, 0: 10}, seed=2, prefix="test")
    predicted = score_pool(result.net, [item.path for item in test]).probabilities.argmax(axis=1)
    assert (predicted[:10] == 2).mean() >= 0.8
    assert (predicted[10:] == 0).mean() >= 0.8
    assert result.train_size == 85 and result.val_size == 14 and len(result.history) == 4


def test_validation_inside_a_fine_tune_is_by_patient(tmp_path):
    # three films per patient, seven patients per class: by image a quarter is 5 films per class (10 in
    # all); by patient it is whole patients, a multiple of three
    items = _items(tmp_path, {0: 21, 1: 21}, per_patient=3)
    result = fine_tune(
        TrainSpec(
            model=ModelSpec("small_cnn", ["a", "b"], SIZE),
            train=items,
            pretrained=False,
            max_epochs=1,
            val_fraction=0.25,
            batch_size=8,
            accelerator="cpu",
        )
    )
    assert result.train_size + result.val_size == 42 and result.val_size == len(result.val_items)
    films = Counter(item.group for item in items)
    in_val = Counter(item.group for item in result.val_items)
    assert in_val and all(count == films[group] for group, count in in_val.items())  # no patient on both sides
    assert result.val_size % 3 == 0 and result.val_size != 10
    assert {item.class_index for item in result.val_items} == {0, 1}


def test_balanced_sampler_draws_classes_evenly(tmp_path):
    items = _items(tmp_path, {0: 30, 1: 3})
    data = XrayDataModule(items, items[:2], SIZE, batch_size=600, balanced=True, epoch_size=600)
    data.setup()
    _, labels = next(iter(data.train_dataloader()))
    assert len(labels) == 600 and 0.4 < labels.float().mean().item() < 0.6


def test_unknown_balance_is_refused(tmp_path):
    with pytest.raises(ValueError, match="balance"):
        fine_tune(
            TrainSpec(
                model=ModelSpec("small_cnn", ["a", "b"], SIZE),
                train=_items(tmp_path, {0: 4, 1: 4}),
                balance="oversample",
                pretrained=False,
            )
        )


def test_channels_last_gives_the_same_logits():
    spec = ModelSpec("efficientnet_lite0", ["a", "b", "c"], 64)
    net = XrayNet(spec, pretrained=False).eval()
    images = torch.rand(4, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    nhwc = copy.deepcopy(net).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert torch.allclose(nhwc(images), net(images), atol=1e-5)


def test_a_fine_tune_decodes_each_film_once_and_returns_the_ordinary_layout(tmp_path):
    items = _items(tmp_path, {0: 10, 1: 10})
    val = [items[0], items[10]]  # one film of each class
    train = [item for item in items if item not in val] + [items[1]]  # a film listed twice (replay, label)
    decoded: Counter = Counter()

    def counting_decode(path: str) -> np.ndarray:
        decoded[path] += 1
        return load_grayscale(path)

    result = fine_tune(
        TrainSpec(
            model=ModelSpec("small_cnn", ["a", "b"], SIZE),
            train=train,
            val=val,
            pretrained=False,
            max_epochs=2,
            patience=5,
            batch_size=8,
            accelerator="cpu",
            decode=counting_decode,
        )
    )
    assert result.epochs_run == 2
    assert decoded == Counter({item.path: 1 for item in items})  # every film, once, over both epochs
    assert all(p.is_contiguous() for p in result.net.parameters())  # saved and exported as usual


def test_stratum_weights_give_each_site_and_each_class_within_it_the_same_share():
    labels = [0] * 300 + [1] * 200 + [0] * 30 + [1] * 8 + [2] * 2
    sites = ["old"] * 500 + ["new"] * 40
    weights = stratum_weights(labels, sites)
    assert weights.sum() == pytest.approx(1.0)

    def share(site, label=None):
        return sum(w for w, s, y in zip(weights, sites, labels) if s == site and label in (None, y))

    assert share("old") == pytest.approx(0.5) and share("new") == pytest.approx(0.5)
    assert share("old", 0) == pytest.approx(0.25) and share("old", 1) == pytest.approx(0.25)
    assert share("new", 2) == pytest.approx(0.5 / 3)  # two films of a class the old site never had
    # without sites: classes alone, as the sampler always balanced them
    plain = stratum_weights(labels)
    for label, count in ((0, 330), (1, 208), (2, 2)):
        assert plain[labels.index(label)] * count == pytest.approx(1 / 3)
