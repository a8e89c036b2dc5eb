"""A fine-tuning round: the upper blocks and the head trained on stored trunk activations.

The round starts from the champion. Its trunk (see learning.trunk) stays frozen, so each image's
activations are read from the store instead of being computed again, and only the upper blocks
and the head take gradient steps. BatchNorm statistics stay as the champion had them: a few
dozen labels of one class must not move what the network learnt of every class. On replayed
images the champion's own calls anchor the new model (learning without forgetting): a
distillation term keeps the old classes' share of the output where the champion had it.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import EarlyStopping
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, Sampler, TensorDataset

from learning.data import LabeledImage, balanced_sampler
from learning.model import XrayClassifier, XrayNet
from learning.train import (
    KeepBest,
    ProgressFn,
    ProgressReport,
    TrainResult,
    class_weights,
    quiet_trainer,
    split_validation,
)
from learning.trunk import ActivationStore, TrunkSplit, activations, split

log = logging.getLogger(__name__)


@dataclass
class RoundSpec:
    net: XrayNet  # the starting point: the champion, its head grown to today's classes
    train: Sequence[LabeledImage]  # the doctors' labels
    store: ActivationStore
    frozen_blocks: int  # the first block that trains; those before it are the trunk
    replay: Sequence[LabeledImage] = ()  # earlier labeled images, replayed so nothing is forgotten
    val: Sequence[LabeledImage] = ()  # empty: a share of train + replay, split by patient
    teacher: XrayNet | None = None  # the champion as it is: its calls on replayed images anchor the old classes
    renamed: dict[str, str] | None = None  # old class name -> new, for the teacher's columns
    distill_weight: float = 1.0
    temperature: float = 2.0
    max_epochs: int = 8
    batch_size: int = 32
    learning_rate: float = 3e-4
    weight_decay: float = 1e-4
    balance: str = "sampler"
    val_fraction: float = 0.15
    patience: int = 3
    seed: int = 0
    max_time_s: float | None = None
    progress: ProgressFn | None = None


@dataclass
class RoundResult(TrainResult):
    trunk_key: str = ""
    activations_computed: int = 0  # images whose trunk activations were not stored yet
    distilled: int = 0  # replayed images anchored by the champion's calls
    val_probabilities: np.ndarray | None = None  # the kept weights on val_items, from their activations


class _UpperModule(XrayClassifier):
    """XrayClassifier's loss, validation and optimiser on activations instead of images; the
    network is the round's own copy, trained through its upper modules only."""

    trunk: TrunkSplit
    distill_weight: float = 1.0
    temperature: float = 2.0
    columns: list[int]  # the new head's column for each of the teacher's

    def attach(self, trunk: TrunkSplit, spec: RoundSpec, columns: list[int]) -> _UpperModule:
        """Train this network (XrayClassifier built its own, unused) through its upper modules."""
        self.net, self.trunk, self.columns = trunk.net, trunk, columns
        self.distill_weight, self.temperature = spec.distill_weight, spec.temperature
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk.logits(x.float())

    def on_train_batch_start(self, batch, batch_idx):
        for module in self.trunk.upper_modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()  # the champion's statistics; Lightning sets train mode each epoch

    def training_step(self, batch, batch_idx):
        features, targets, teacher, anchored = batch
        logits = self(features)
        loss = self.loss(logits, targets)
        if self.distill_weight > 0 and self.columns and bool(anchored.any()):
            t = self.temperature
            student = F.log_softmax(logits[anchored][:, self.columns] / t, dim=1)
            target = F.softmax(teacher[anchored] / t, dim=1)
            loss = loss + self.distill_weight * t * t * F.kl_div(student, target, reduction="batchmean")
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(targets))
        return loss

    def validation_step(self, batch, batch_idx):
        features, targets, _, _ = batch
        return super().validation_step((features, targets), batch_idx)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            self.trunk.upper_parameters(), lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay
        )
        epochs = max(1, self.trainer.max_epochs or 1)
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)}


def _teacher_logits(
    spec: RoundSpec, key: str, values: torch.Tensor, names: list[str]
) -> tuple[torch.Tensor, list[int]]:
    """The champion's logits on every image, and for each of its columns the new head's column of
    the same class; no columns when there is no teacher or its trunk differs (its activations
    would be others)."""
    if spec.teacher is None or spec.distill_weight <= 0:
        return torch.zeros(len(values), 1), []
    teacher_trunk = split(spec.teacher, spec.frozen_blocks)
    if teacher_trunk.key() != key:
        log.warning("the champion's trunk differs from the round's: no distillation this round")
        return torch.zeros(len(values), 1), []
    renamed = spec.renamed or {}
    kept = [
        (i, names.index(renamed.get(n, n)))
        for i, n in enumerate(spec.teacher.spec.class_names)
        if renamed.get(n, n) in names
    ]
    spec.teacher.eval()
    with torch.inference_mode():
        logits = torch.cat([teacher_trunk.logits(chunk.float()) for chunk in values.split(256)])
    return logits[:, [i for i, _ in kept]].clone(), [column for _, column in kept]


def _loader(dataset: TensorDataset, labels: list[int], spec: RoundSpec, shuffle: bool) -> DataLoader:
    if not shuffle:
        return DataLoader(dataset, batch_size=spec.batch_size * 4)
    generator = torch.Generator().manual_seed(spec.seed)
    sampler: Sampler
    if spec.balance == "sampler":
        sampler = balanced_sampler(labels, len(labels), generator)
    else:
        sampler = RandomSampler(dataset, generator=generator)
    return DataLoader(dataset, batch_size=spec.batch_size, sampler=sampler)


def fine_tune_round(spec: RoundSpec) -> RoundResult:
    """Train the upper blocks and the head on stored trunk activations; the best validation-loss
    epoch's weights are returned as a whole network (trunk included), ready to register."""
    if spec.balance not in ("loss", "sampler", "none"):
        raise ValueError(f"Unknown class balance {spec.balance!r}; use loss, sampler or none.")
    started = time.monotonic()
    pl.seed_everything(spec.seed, workers=True, verbose=False)
    net = copy.deepcopy(spec.net).cpu().train()  # BatchNorm goes back to eval mode per batch
    trunk = split(net, spec.frozen_blocks)
    names = net.spec.class_names
    replayed = set(spec.replay)
    train_items, val_items = [*spec.train, *spec.replay], list(spec.val)
    if not val_items:
        train_items, val_items = split_validation(train_items, spec.val_fraction, spec.seed)
    if not train_items or not val_items:
        raise ValueError("A round needs labeled images for both training and validation.")
    everything = [*train_items, *val_items]
    stored = activations(trunk, [item.path for item in everything], spec.store)
    # NHWC, as fine_tune trains on a CPU: oneDNN's convolutions (the depthwise ones above all) run
    # far faster so; the network goes back to the ordinary layout before it is returned
    values = stored.values.contiguous(memory_format=torch.channels_last)
    net.to(memory_format=torch.channels_last)
    teacher, columns = _teacher_logits(spec, stored.key, values, names)
    anchored = torch.tensor([item in replayed for item in everything]) & bool(columns)
    labels = torch.tensor([item.class_index for item in everything])
    cut = len(train_items)

    def part(rows: slice) -> TensorDataset:
        return TensorDataset(values[rows], labels[rows], teacher[rows], anchored[rows])

    weights = class_weights(train_items, net.spec.num_classes) if spec.balance == "loss" else None
    module = _UpperModule(
        net.spec,
        learning_rate=spec.learning_rate,
        weight_decay=spec.weight_decay,
        class_weights=weights,
        pretrained=False,
    ).attach(trunk, spec, columns)
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    for parameter in trunk.upper_parameters():
        parameter.requires_grad_(True)
    progress = ProgressReport(spec.progress or (lambda _: None))
    keep_best = KeepBest()
    precision: Any = "32-true"  # activations are small: a CPU round gains nothing from mixed precision
    trainer = quiet_trainer(
        spec.max_epochs,
        "cpu",
        precision,
        spec.max_time_s,
        [EarlyStopping("val_loss", mode="min", patience=spec.patience), keep_best, progress],
    )
    trainer.fit(
        module,
        train_dataloaders=_loader(part(slice(0, cut)), labels[:cut].tolist(), spec, shuffle=True),
        val_dataloaders=_loader(part(slice(cut, None)), [], spec, shuffle=False),
    )
    for parameter in net.parameters():
        parameter.requires_grad_(True)
    net.to(memory_format=torch.contiguous_format)
    if keep_best.state is not None:
        net.load_state_dict(keep_best.state)
    net.eval()
    with torch.inference_mode():
        val_probabilities = torch.cat([trunk.logits(chunk.float()).softmax(1) for chunk in values[cut:].split(256)])
    return RoundResult(
        net=net,
        history=progress.history,
        **keep_best.recorded(trainer),
        duration_s=time.monotonic() - started,
        train_size=len(train_items),
        val_size=len(val_items),
        accelerator="cpu",
        precision=precision,
        val_items=val_items,
        trunk_key=stored.key,
        activations_computed=stored.computed,
        distilled=int(anchored[:cut].sum()),
        val_probabilities=val_probabilities.numpy(),
    )
