"""Rounds on stored trunk activations: the cache's keys, and a round that learns without forgetting."""

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from learning.data import LabeledImage
from learning.model import ModelSpec, XrayNet, adapt_head
from learning.predict import score_pool
from learning.rounds import AverageWeights, RoundSpec, fine_tune_round
from learning.train import TrainSpec, fine_tune
from learning.trunk import ActivationStore, TrunkSplit, activations, split, warm

SIZE = 16


def _image(kind: int, rng) -> np.ndarray:
    base = rng.normal(60, 12, (SIZE, SIZE))
    if kind == 1:
        base[:, : SIZE // 2] += 90  # bright left half
    elif kind == 2:
        base[: SIZE // 2, :] += 120  # bright top half: the class added later
    return np.clip(base, 0, 255).astype(np.uint8)


def _items(tmp_path, counts: dict[int, int], seed: int = 0, prefix: str = "img") -> list[LabeledImage]:
    rng = np.random.default_rng(seed)
    items = []
    for kind, count in counts.items():
        for index in range(count):
            path = tmp_path / f"{prefix}-{kind}-{index}.png"
            Image.fromarray(_image(kind, rng), mode="L").save(path)
            items.append(LabeledImage(str(path), kind, f"{prefix}-patient-{kind}-{index}"))
    return items


def _net(seed: int = 0, names=("a", "b")) -> XrayNet:
    torch.manual_seed(seed)
    return XrayNet(ModelSpec("small_cnn", list(names), SIZE, dropout=0.0), pretrained=False).eval()


def test_a_new_trunk_never_reads_old_activations(tmp_path):
    store = ActivationStore(tmp_path / "store")
    paths = [item.path for item in _items(tmp_path, {0: 3})]
    net = _net()
    first = activations(split(net, 4), paths, store)
    assert first.computed == 3
    again = activations(split(net, 4), paths, store)
    assert again.computed == 0 and torch.equal(again.values, first.values)
    # another trunk: the same images are computed afresh, from the new weights
    other = _net(seed=1)
    moved = activations(split(other, 4), paths, store)
    assert moved.computed == 3
    assert not torch.equal(moved.values, first.values)
    expected = split(other, 4).lower(
        torch.stack([torch.from_numpy(np.asarray(Image.open(p), np.float32) / 255)[None] for p in paths])
    )
    assert torch.allclose(moved.values.float(), expected.detach(), atol=1e-2)
    # only a running statistic of the trunk changed: still another trunk
    tweaked = _net()
    tweaked.features[1].running_mean += 0.5
    assert split(tweaked, 4).key() != split(net, 4).key()
    # the upper layers are not part of the trunk: a round that trained them reuses the activations
    head_only = _net()
    with torch.no_grad():
        head_only.features[4].weight.add_(1.0)
        head_only.head.weight.add_(1.0)
    assert split(head_only, 4).key() == split(net, 4).key()


def test_a_changed_image_is_computed_again(tmp_path):
    store = ActivationStore(tmp_path / "store")
    item = _items(tmp_path, {1: 1})[0]
    trunk = split(_net(), 4)
    before = activations(trunk, [item.path], store)
    Image.fromarray(_image(0, np.random.default_rng(9)), mode="L").save(item.path)  # new bytes, same path
    after = activations(trunk, [item.path], store)
    assert after.computed == 1
    assert not torch.equal(after.values, before.values)


def test_warming_hashes_the_trunk_once_and_stores_what_activations_read(tmp_path, monkeypatch):
    store = ActivationStore(tmp_path / "store")
    paths = [item.path for item in _items(tmp_path, {0: 3})]
    trunk = split(_net(), 4)
    hashed = []
    key = TrunkSplit.key
    monkeypatch.setattr(TrunkSplit, "key", lambda self: hashed.append(1) or key(self))
    assert warm(trunk, paths, store, limit=2) == 2
    assert len(hashed) == 1  # warm's key serves the activations it computes
    assert activations(trunk, paths, store).computed == 1  # the two warmed are read, not computed


def test_store_forgets_trunks_no_version_uses(tmp_path):
    store = ActivationStore(tmp_path / "store")
    paths = [item.path for item in _items(tmp_path, {0: 2})]
    old, new = split(_net(0), 4), split(_net(1), 4)
    activations(old, paths, store)
    activations(new, paths, store)
    assert store.forget({new.key()}) == 1
    assert activations(new, paths, store).computed == 0
    assert activations(old, paths, store).computed == 2


def test_round_learns_a_new_class_and_keeps_the_trunk(tmp_path):
    # a champion that knows a and b, trained in full
    seed_items = _items(tmp_path, {0: 24, 1: 24}, prefix="seed")
    champion = fine_tune(
        TrainSpec(
            model=ModelSpec("small_cnn", ["a", "b"], SIZE, dropout=0.0),
            train=seed_items,
            pretrained=False,
            max_epochs=6,
            batch_size=8,
            learning_rate=3e-3,
            augment=False,
            balance="none",
            patience=6,
        )
    ).net
    grown = adapt_head(champion, ["a", "b", "c"])
    store = ActivationStore(tmp_path / "store")
    doctors = _items(tmp_path, {2: 16, 1: 4}, seed=1, prefix="new")
    result = fine_tune_round(
        RoundSpec(
            net=grown,
            teacher=champion,
            train=doctors,
            replay=seed_items,
            store=store,
            frozen_blocks=4,
            max_epochs=12,
            batch_size=8,
            learning_rate=3e-3,
            patience=12,
        )
    )
    trunk_before, trunk_after = split(grown, 4), split(result.net, 4)
    assert trunk_after.key() == trunk_before.key() == result.trunk_key
    assert result.activations_computed == len(doctors) + len(seed_items)
    assert result.distilled > 0
    held_out = _items(tmp_path, {0: 10, 1: 10, 2: 10}, seed=5, prefix="test")
    called = score_pool(result.net, [item.path for item in held_out]).probabilities.argmax(axis=1)
    truth = np.array([item.class_index for item in held_out])
    assert (called[truth == 2] == 2).mean() >= 0.8  # the new class is learnt
    old = truth < 2
    assert (called[old] == truth[old]).mean() >= 0.8  # the old ones are kept
    # a second round on the same trunk computes nothing again
    again = fine_tune_round(
        RoundSpec(net=result.net, train=doctors, replay=seed_items, store=store, frozen_blocks=4, max_epochs=1)
    )
    assert again.activations_computed == 0


def test_round_refuses_a_backbone_it_cannot_split(tmp_path):
    net = XrayNet(ModelSpec("resnet18", ["a", "b"], SIZE), pretrained=False)
    with pytest.raises(ValueError, match="cannot be split"):
        split(net, 2)


class _Recorder(pl.Callback):
    """Every epoch's weights, as they were at its end."""

    def __init__(self):
        self.states = []

    def on_train_epoch_end(self, trainer, module):
        self.states.append({k: v.detach().clone() for k, v in module.net.state_dict().items()})


class _Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Linear(3, 2)

    def training_step(self, batch, batch_idx):
        features, targets = batch
        return torch.nn.functional.cross_entropy(self.net(features), targets)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def test_averaged_weights_are_the_mean_of_the_later_epochs():
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(24, 3, generator=generator), torch.randint(0, 2, (24,), generator=generator))
    averaged, recorder = AverageWeights(first_epoch=3), _Recorder()
    trainer = pl.Trainer(
        max_epochs=6,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder, averaged],
    )
    trainer.fit(_Tiny(), DataLoader(data, batch_size=8))
    assert len(recorder.states) == 6 and averaged.count == 4  # epochs 3 to 6
    for name in ("weight", "bias"):
        expected = torch.stack([state[name] for state in recorder.states[2:]]).mean(0)
        assert torch.allclose(averaged.state[name], expected, atol=1e-6)
        assert not torch.allclose(averaged.state[name], recorder.states[-1][name])  # not merely the last


def test_a_round_keeps_the_weights_it_is_told_to(tmp_path):
    items = _items(tmp_path, {0: 12, 1: 12})
    common = dict(net=_net(), train=items, store=ActivationStore(tmp_path / "store"), frozen_blocks=4, max_epochs=4)
    kept = {keep: fine_tune_round(RoundSpec(**common, keep=keep)).net for keep in ("last", "average")}
    assert not torch.equal(kept["last"].head.weight, kept["average"].head.weight)
    with pytest.raises(ValueError, match="kept weights"):
        fine_tune_round(RoundSpec(**common, keep="median"))


def test_an_averaged_round_keeps_a_trunk_that_holds_a_negative_zero(tmp_path):
    # weights read back from float16 hold -0.0 where a tiny negative weight underflowed; averaging the
    # epochs' frozen weights once turned them into +0.0, so the candidate's trunk key differed from its
    # champion's and the next round and the gate computed every film's activations again
    net = _net()
    with torch.no_grad():
        net.features[0].weight.view(-1)[0] = -0.0
    items = _items(tmp_path, {0: 12, 1: 12})
    result = fine_tune_round(
        RoundSpec(net=net, train=items, store=ActivationStore(tmp_path / "store"), frozen_blocks=4, max_epochs=4)
    )
    assert torch.signbit(split(result.net, 4).lower_modules[0].weight.view(-1)[0])
    assert split(result.net, 4).key() == split(net, 4).key() == result.trunk_key
