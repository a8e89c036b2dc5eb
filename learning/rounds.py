"""A fine-tuning round: the upper blocks and the head trained on stored trunk activations.

The round starts from the champion. Its trunk (see learning.trunk) stays frozen, so each image's
activations are read from the store instead of being computed again, and only the upper blocks
and the head take gradient steps. BatchNorm statistics stay as the champion had them: a few
dozen labels of one class must not move what the network learnt of every class. On replayed
images the champion's own calls anchor the new model (learning without forgetting): a
distillation term keeps the old classes' share of the output where the champion had it.
Draws and the validation loss weigh every site alike (and every class within a site), and the
weights kept are by default the mean of the later epochs': a round's candidate then depends on
its labels more than on which batch came last.
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
import torchmetrics
from pytorch_lightning.callbacks import EarlyStopping
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, Sampler, TensorDataset

from learning.classifier import XrayClassifier
from learning.data import LabeledImage, balanced_sampler, stratum_weights
from learning.model import XrayNet
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
    balance_sites: bool = True  # each site drawn, and its validation loss counted, as much as the others
    keep: str = "average"  # average: the mean of the second half's epochs; last; best: lowest validation loss
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
        features, targets, teacher, anchored, _ = batch
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
        features, targets, _, _, weight = batch
        logits = self(features)
        # each film's share of the epoch's loss (the shares sum to 1): every site, and every class
        # within it, counts alike, so a new site's few films choose the kept epoch as much as the replay
        loss = _weighted_loss(logits, targets, weight)
        self.log("val_loss", loss, prog_bar=True, batch_size=len(targets), reduce_fx="sum")
        self.log_validation_metrics(logits, targets)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            self.trunk.upper_parameters(), lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay
        )
        epochs = max(1, self.trainer.max_epochs or 1)
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)}


def _weighted_loss(logits: torch.Tensor, targets: torch.Tensor, share: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with each film counted by its share of the validation loss."""
    return (share * F.cross_entropy(logits.float(), targets, reduction="none")).sum()


class AverageWeights(pl.Callback):
    """The mean of the weights at the end of each epoch from `first_epoch` (1-based) on: one
    round's swing from batch to batch averages out, as in stochastic weight averaging. BatchNorm
    statistics do not move in a round, so the mean needs no new ones."""

    def __init__(self, first_epoch: int):
        self.first_epoch, self.state = max(1, first_epoch), None
        self.epochs: list[int] = []  # 1-based, those in the mean

    @property
    def count(self) -> int:
        return len(self.epochs)

    def on_train_epoch_end(self, trainer, module):
        if trainer.current_epoch + 1 < self.first_epoch:
            return
        current = {name: tensor.detach().clone() for name, tensor in module.net.state_dict().items()}
        self.epochs.append(trainer.current_epoch + 1)
        if self.state is None:
            self.state = current
            return
        for name, tensor in current.items():
            # a tensor that did not move (the frozen trunk) keeps its bytes: the update would turn a
            # -0.0 into +0.0 (-0.0 + 0.0), and the trunk's activation key hashes the bytes
            if tensor.is_floating_point() and not torch.equal(tensor, self.state[name]):
                self.state[name] += (tensor - self.state[name]) / self.count


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


def _loader(dataset: TensorDataset, items: list[LabeledImage], spec: RoundSpec, shuffle: bool) -> DataLoader:
    if not shuffle:
        return DataLoader(dataset, batch_size=spec.batch_size * 4)
    generator = torch.Generator().manual_seed(spec.seed)
    sampler: Sampler
    if spec.balance == "sampler":
        labels = [item.class_index for item in items]
        sites = [item.site for item in items] if spec.balance_sites else None
        sampler = balanced_sampler(labels, len(labels), generator, sites)
    else:
        sampler = RandomSampler(dataset, generator=generator)
    return DataLoader(dataset, batch_size=spec.batch_size, sampler=sampler)


def fine_tune_round(spec: RoundSpec) -> RoundResult:
    """Train the upper blocks and the head on stored trunk activations; the weights `spec.keep`
    names (the mean of the later epochs', the last epoch's, or the lowest validation loss's) are
    returned as a whole network (trunk included), ready to register."""
    if spec.balance not in ("loss", "sampler", "none"):
        raise ValueError(f"Unknown class balance {spec.balance!r}; use loss, sampler or none.")
    if spec.keep not in ("best", "last", "average"):
        raise ValueError(f"Unknown choice of kept weights {spec.keep!r}; use best, last or average.")
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
    val_labels = [item.class_index for item in val_items]
    share = torch.from_numpy(
        stratum_weights(val_labels, [item.site for item in val_items] if spec.balance_sites else None)
        if spec.balance != "none"
        else np.full(len(val_items), 1.0 / len(val_items))
    ).float()
    weight = torch.cat([torch.zeros(cut), share])

    def part(rows: slice) -> TensorDataset:
        return TensorDataset(values[rows], labels[rows], teacher[rows], anchored[rows], weight[rows])

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
    averaged = AverageWeights(first_epoch=spec.max_epochs // 2)
    precision: Any = "32-true"  # activations are small: a CPU round gains nothing from mixed precision
    trainer = quiet_trainer(
        spec.max_epochs,
        "cpu",
        precision,
        spec.max_time_s,
        [EarlyStopping("val_loss", mode="min", patience=spec.patience), keep_best, progress]
        if spec.keep == "best"
        else [keep_best, averaged, progress],
    )
    trainer.fit(
        module,
        train_dataloaders=_loader(part(slice(0, cut)), train_items, spec, shuffle=True),
        val_dataloaders=_loader(part(slice(cut, None)), val_items, spec, shuffle=False),
    )
    for parameter in net.parameters():
        parameter.requires_grad_(True)
    net.to(memory_format=torch.contiguous_format)
    kept = [trainer.current_epoch]  # the last epoch's weights, unless told otherwise
    if spec.keep == "best" and keep_best.state is not None:
        net.load_state_dict(keep_best.state)
        kept = [keep_best.best_epoch]
    elif spec.keep == "average" and averaged.state is not None:
        net.load_state_dict(averaged.state)
        kept = averaged.epochs
    net.eval()
    with torch.inference_mode():
        val_logits = torch.cat([trunk.logits(chunk.float()) for chunk in values[cut:].split(256)])
    val_probabilities = val_logits.softmax(1)
    recorded = keep_best.recorded(trainer)
    if spec.keep != "best" or keep_best.state is None:  # the figures of the weights kept, not of an epoch
        targets = labels[cut:]
        recorded |= {
            "best_epoch": recorded["epochs_run"],
            "best_val_loss": float(_weighted_loss(val_logits, targets, share)),
            "best_val_auc": float(
                torchmetrics.AUROC(task="multiclass", num_classes=net.spec.num_classes)(val_probabilities, targets)
            ),
        }
    return RoundResult(
        net=net,
        history=progress.history,
        **recorded,
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
        kept_epochs=kept,
    )
