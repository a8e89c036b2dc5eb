"""The full fine-tune as Lightning DDP: two CPU processes (gloo) give the artefact one process gives,
each rank drawing its own half of every epoch."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import SequentialSampler

from learning.data import LabeledImage, balanced_sampler
from learning.distributed import RankShard
from learning.model import ModelSpec, load_model, save_model
from learning.predict import score_pool
from learning.train import TrainSpec, fine_tune, resolve_devices

SIZE = 32  # the test settings' image size (tests/conftest.py)


def _films(folder, counts: dict[int, int], seed: int, prefix: str) -> list[LabeledImage]:
    rng = np.random.default_rng(seed)
    items = []
    for kind, count in counts.items():
        for index in range(count):
            pixels = rng.normal(60, 12, (SIZE, SIZE))
            pixels[:, : SIZE // 2] += 90 * kind  # class 1: a bright left half
            path = folder / f"{prefix}-{kind}-{index}.png"
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L").save(path)
            items.append(LabeledImage(str(path), kind, f"{prefix}-patient-{kind}-{index}"))
    return items


def test_ranks_share_an_epoch_of_balanced_draws_without_overlap():
    labels = [0] * 30 + [1] * 3
    draws = list(balanced_sampler(labels, 41, torch.Generator().manual_seed(7)))
    shards = [list(RankShard(balanced_sampler(labels, 41, torch.Generator().manual_seed(7)), r, 2)) for r in (0, 1)]
    assert [len(shard) for shard in shards] == [21, 21]  # the same number of steps on each rank
    assert shards[0][:20] == draws[0:40:2] and shards[1][:20] == draws[1:40:2]  # one sequence, dealt out
    assert shards[0][20] == draws[40] and shards[1][20] == draws[0]  # padded by wrapping round
    validation = [list(RankShard(SequentialSampler(range(5)), r, 2, pad=False)) for r in (0, 1)]
    assert validation == [[0, 2, 4], [1, 3]]  # each validation film on exactly one rank


def test_devices_auto_is_one_process_on_a_cpu():
    assert resolve_devices("auto", "cpu") == 1
    assert resolve_devices(2, "cpu") == 2
    with pytest.raises(ValueError, match="at least 1"):
        resolve_devices(0, "cpu")


@pytest.mark.slow
def test_two_gloo_processes_give_the_artefact_one_process_gives(tmp_path):
    spec = ModelSpec("small_cnn", ["normal", "pneumonia"], SIZE, dropout=0.0)
    train = _films(tmp_path, {0: 20, 1: 20}, seed=0, prefix="train")
    val = _films(tmp_path, {0: 4, 1: 5}, seed=1, prefix="val")  # odd: one rank validates one film more
    results, events = {}, {1: [], 2: []}
    for devices in (1, 2):
        results[devices] = fine_tune(
            TrainSpec(
                model=spec,
                train=train,
                val=val,
                pretrained=False,
                max_epochs=2,
                freeze_backbone_epochs=1,  # as config.yaml: the first epoch leaves the backbone without gradients
                balance="sampler",
                batch_size=8,
                learning_rate=3e-3,
                accelerator="cpu",
                devices=devices,
                patience=5,
                progress=events[devices].append,
            )
        )
    one, two = results[1], results[2]

    assert (one.world_size, one.backend) == (1, None)
    assert (two.world_size, two.backend) == (2, "gloo")
    # both ranks trained, each on half of every epoch of 40 draws
    assert two.epochs_run == one.epochs_run == 2
    assert one.samples_per_rank == [80] and two.samples_per_rank == [40, 40]

    # the same artefact: weights of the same names and shapes, the same per-epoch metrics
    shapes = [{name: value.shape for name, value in r.net.state_dict().items()} for r in (one, two)]
    assert shapes[0] == shapes[1]
    assert [set(row) for row in two.history] == [set(row) for row in one.history]
    assert {"train_loss", "val_loss", "val_auc", "val_acc"} <= set(two.history[-1])
    assert two.best_epoch in (1, 2) and np.isfinite(two.best_val_loss)
    assert (two.train_size, two.val_size, two.val_items) == (one.train_size, one.val_size, one.val_items)
    # rank 0's progress reached the caller, as the Training page reads it
    assert [e["epoch"] for e in events[2] if "val_auc" in e] == [1, 2]

    # saved, loaded and scored like any model
    save_model(two.net, tmp_path / "ddp-model")
    probabilities = score_pool(load_model(tmp_path / "ddp-model"), [item.path for item in val]).probabilities
    assert probabilities.shape == (9, 2) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
