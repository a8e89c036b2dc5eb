"""Fine-tuning: a run spec in, trained weights and per-epoch metrics out, in this process or as
Lightning DDP across several (learning.distributed starts them)."""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
from lightning_fabric.plugins.environments import LightningEnvironment
from pytorch_lightning.callbacks import Callback, EarlyStopping
from pytorch_lightning.strategies import DDPStrategy
from torch.utils.data import DataLoader, Sampler

from learning.classifier import XrayClassifier
from learning.data import Decoder, LabeledImage, patient_split
from learning.datamodule import XrayDataModule
from learning.decoding import load_grayscale
from learning.distributed import RankShard, launch
from learning.model import ModelSpec, XrayNet

log = logging.getLogger(__name__)

ProgressFn = Callable[[dict], None]


@dataclass
class TrainSpec:
    model: ModelSpec
    train: Sequence[LabeledImage]
    val: Sequence[LabeledImage] = ()
    init_from: XrayNet | None = None  # fine-tune from these weights (the champion)
    weights_path: str | None = None  # local backbone weights when there is no champion
    pretrained: bool = True
    max_epochs: int = 8
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    augment: bool = True
    # class balance: "loss" weights the loss by inverse class frequency, "sampler" draws
    # training images class-balanced (WeightedRandomSampler), "none" does neither
    balance: str = "loss"
    # head-first: train only the new head on a frozen backbone (BatchNorm statistics kept) for
    # this many epochs, then unfreeze everything; a class with five images is learned without
    # the backbone drifting on it
    freeze_backbone_epochs: int = 0
    epoch_size: int = 0  # at least this many training draws per epoch
    max_time_s: float | None = None  # stop training after this long (the best epoch is kept)
    cache: bool = True  # images decoded once and kept as uint8 (else streamed)
    decode: Decoder = load_grayscale  # a film's path to its pixels
    val_fraction: float = 0.15
    patience: int = 3
    seed: int = 0
    accelerator: str = "auto"
    precision: str = "auto"
    # processes (one per GPU on GPUs): above 1 the fine-tune runs as DDP (see resolve_devices)
    devices: int | str = 1
    num_workers: int = 0
    progress: ProgressFn | None = None


@dataclass
class TrainResult:
    net: XrayNet
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_val_auc: float = float("nan")
    best_val_loss: float = float("nan")
    epochs_run: int = 0
    duration_s: float = 0.0
    train_size: int = 0
    val_size: int = 0
    accelerator: str = "cpu"
    precision: str = "32-true"
    val_items: list[LabeledImage] = field(default_factory=list)  # what chose the epoch (and fits operating points)
    kept_epochs: list[int] = field(default_factory=list)  # the epochs the model is (their mean if several)
    world_size: int = 1  # processes that trained it (DDP above 1)
    backend: str | None = None  # their process group's backend: gloo on CPUs, nccl on GPUs
    samples_per_rank: list[int] = field(default_factory=list)  # training images each process drew, all epochs


def on_cpu(accelerator: str) -> bool:
    return accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())


def resolve_precision(precision: str, accelerator: str) -> str:
    """Mixed precision on a GPU, full precision on the CPU: even where the CPU computes bfloat16
    natively, bf16 autocast on top of channels_last measured no clear gain and moved the
    probabilities (docs/benchmarks.md, "CPU training speed"); `bf16-mixed` can still be set."""
    if precision != "auto":
        return precision
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def resolve_devices(devices: int | str, accelerator: str) -> int:
    """How many processes a fine-tune runs as. "auto" is every GPU when it trains on GPUs, and one
    process on a CPU, where one process's threads already use every core. A number is taken as
    it is: on a CPU that many processes share the cores (the slow DDP test runs two)."""
    gpus = torch.cuda.device_count() if not on_cpu(accelerator) and accelerator != "mps" else 0
    if devices == "auto":
        return max(1, gpus)
    count = int(devices)
    if count < 1:
        raise ValueError(f"devices must be at least 1 (got {devices!r}).")
    if gpus and count > gpus:
        raise ValueError(f"devices is {count} but this machine has {gpus} GPU(s).")
    return count


def split_validation(
    items: Sequence[LabeledImage], fraction: float, seed: int
) -> tuple[list[LabeledImage], list[LabeledImage]]:
    """The validation split of a fine-tune, stratified by site and class so a rare class, and a new
    site's few films, are present in both parts. When the images carry patient ids the split is by
    patient (an image without one is its own patient), so validation never sees a patient that
    training saw."""
    items = list(items)
    strata = [f"{item.site or ''}\x00{item.class_index}" for item in items]
    if any(item.group is not None for item in items):
        groups = [item.group if item.group is not None else f"\x00image:{index}" for index, item in enumerate(items)]
        parts = patient_split(groups, {"train": 1.0 - fraction, "val": fraction}, seed, stratify=strata)
        return [items[i] for i in parts["train"]], [items[i] for i in parts["val"]]
    rng = random.Random(seed)
    train, val = [], []
    by_stratum: dict[str, list[LabeledImage]] = {}
    for item, stratum in zip(items, strata, strict=True):
        by_stratum.setdefault(stratum, []).append(item)
    for members in by_stratum.values():
        members = members[:]
        rng.shuffle(members)
        cut = int(round(len(members) * fraction)) if len(members) > 1 else 0
        val.extend(members[:cut])
        train.extend(members[cut:])
    return train, val


def class_weights(items: Sequence[LabeledImage], num_classes: int) -> list[float]:
    """Inverse-frequency weights: the demo data hold nine pneumonia images for each normal one."""
    counts = np.bincount([item.class_index for item in items], minlength=num_classes).astype(float)
    counts[counts == 0] = 1.0
    weights = counts.sum() / (num_classes * counts)
    return weights.tolist()


class ProgressReport(Callback):
    """Reports epoch, step and loss to the caller (the worker stores it for the Training page). Every
    report carries the finished epochs' metrics (`history`) and the seconds since fitting began
    (`elapsed_s`): whoever keeps only the latest report still has the curves and the pace."""

    def __init__(self, report: ProgressFn, every_s: float = 1.0):
        self.report, self.every_s, self._last = report, every_s, 0.0
        self.history: list[dict] = []
        self._started = time.monotonic()

    def on_train_start(self, trainer, module):
        self._started = time.monotonic()

    def _send(self, update: dict) -> None:
        elapsed = round(time.monotonic() - self._started, 1)
        history = [{key: _finite(value) for key, value in row.items()} for row in self.history]
        update = {key: _finite(value) for key, value in update.items()}
        self.report({**update, "elapsed_s": elapsed, "history": history})

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            loss = outputs["loss"].item() if isinstance(outputs, dict) else float(outputs)
            self._send(
                {
                    "epoch": trainer.current_epoch + 1,
                    "max_epochs": trainer.max_epochs,
                    "step": batch_idx + 1,
                    "steps": trainer.num_training_batches,
                    "loss": round(loss, 4),
                }
            )

    def on_train_epoch_end(self, trainer, module):
        # runs after the epoch's validation, so both losses and val_auc are known here
        metrics = {key: float(value) for key, value in trainer.callback_metrics.items() if key != "train_loss_step"}
        metrics["train_loss"] = metrics.pop("train_loss_epoch", float("nan"))
        row = {"epoch": trainer.current_epoch + 1, **{k: round(v, 5) for k, v in metrics.items()}}
        self.history.append(row)
        self._send(
            {
                "epoch": trainer.current_epoch + 1,
                "max_epochs": trainer.max_epochs,
                "step": trainer.num_training_batches,
                "steps": trainer.num_training_batches,
                "loss": round(metrics["train_loss"], 4),
                "val_auc": round(metrics.get("val_auc", float("nan")), 4),
            }
        )


def _finite(value: Any) -> Any:
    """None for a metric that is not a number (a validation AUC with one class missing): reports
    travel as JSON, which has no NaN."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


class _FreezeBackbone(Callback):
    """Head-first training: the backbone is frozen (no gradients, BatchNorm in eval mode) for the
    first `epochs` epochs, then everything trains."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def _frozen(self, trainer) -> bool:
        return trainer.current_epoch < self.epochs

    def on_train_epoch_start(self, trainer, module):
        frozen = self._frozen(trainer)
        for parameter in module.net.features.parameters():
            parameter.requires_grad_(not frozen)

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self._frozen(trainer):
            module.net.features.eval()  # Lightning puts the module back in train mode each epoch

    def on_train_end(self, trainer, module):
        for parameter in module.net.features.parameters():
            parameter.requires_grad_(True)


class RankCount(Callback):
    """What each process of a run did: the training images it drew, gathered to rank 0 at the end,
    and the process group it belonged to."""

    def __init__(self) -> None:
        self.samples, self.per_rank, self.backend = 0, [0], None

    def on_train_start(self, trainer, module):
        self.backend = dist.get_backend() if dist.is_available() and dist.is_initialized() else None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.samples += len(batch[1])

    def on_train_end(self, trainer, module):
        gathered = trainer.strategy.all_gather(torch.tensor(self.samples, device=module.device))
        self.per_rank = [int(count) for count in gathered.reshape(-1).tolist()]


class KeepBest(Callback):
    """Keeps the lowest-validation-loss epoch's weights in memory (no checkpoint files).

    Loss, not AUC: on chest X-rays validation AUC saturates near 1 within an epoch or two, while
    the loss still tells a calibrated model from one that merely ranks well.
    """

    def __init__(self, monitor: str = "val_loss"):
        self.monitor, self.best, self.best_epoch, self.state = monitor, float("inf"), 0, None
        self.best_auc = float("nan")

    def on_validation_epoch_end(self, trainer, module):
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and float(value) < self.best:
            self.best, self.best_epoch = float(value), trainer.current_epoch + 1
            self.best_auc = float(trainer.callback_metrics.get("val_auc", float("nan")))
            self.state = copy.deepcopy(module.net.state_dict())

    def recorded(self, trainer: pl.Trainer) -> dict[str, Any]:
        """What a result says of the run: its best epoch, that epoch's figures, epochs run."""
        return {
            "best_epoch": self.best_epoch,
            "best_val_auc": self.best_auc,
            "best_val_loss": self.best,
            "epochs_run": trainer.current_epoch,
        }


def quiet_trainer(
    max_epochs: int,
    accelerator: str,
    precision: Any,
    max_time_s: float | None,
    callbacks: list[Callback],
    devices: int = 1,
    strategy: Any = "auto",
) -> pl.Trainer:
    """No logger, checkpoint files or progress bar: the callbacks report and keep the best. One
    device unless `devices` and a DDP `strategy` say otherwise (see `ddp`)."""
    return pl.Trainer(
        max_epochs=max_epochs,
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        # the loaders shard themselves (RankData): Lightning's replacement would turn a RandomSampler
        # of epoch_size draws into one pass over the images
        use_distributed_sampler=False,
        precision=precision,
        max_time=None if max_time_s is None else {"seconds": int(max_time_s)},
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=False,
        log_every_n_steps=1,
    )


def ddp(spec: TrainSpec) -> DDPStrategy:
    """The strategy of a run across processes. The environment is Lightning's own (LOCAL_RANK,
    NODE_RANK, MASTER_ADDR and MASTER_PORT, as learning.distributed or torchrun set them), named so
    that a worker inside a SLURM or Kubernetes job does not take the job's ranks for its own. The
    backend is Lightning's choice: gloo on CPUs, nccl on GPUs. Head-first epochs leave the backbone
    without gradients, which DDP allows only when it looks for unused parameters."""
    return DDPStrategy(
        cluster_environment=LightningEnvironment(), find_unused_parameters=spec.freeze_backbone_epochs > 0
    )


class RankData(XrayDataModule):
    """The fine-tune's loaders, each process drawing its share. Training: every rank draws the same
    seeded sequence and keeps every world-th draw, so an epoch is as long as on one process and
    each rank takes 1/world of it. Validation: each image on exactly one rank; the metrics are
    summed over the ranks (XrayClassifier). On one process the loaders are XrayDataModule's."""

    def train_dataloader(self) -> DataLoader:
        return self._shard(super().train_dataloader(), pad=True)

    def val_dataloader(self) -> DataLoader:
        return self._shard(super().val_dataloader(), pad=False)

    def _shard(self, loader: DataLoader, pad: bool) -> DataLoader:
        if self.trainer is None or self.trainer.world_size == 1:
            return loader
        assert isinstance(loader.sampler, Sampler)  # XrayDataModule's loaders are sampled, never iterable
        return DataLoader(
            loader.dataset,
            batch_size=loader.batch_size,
            sampler=RankShard(loader.sampler, self.trainer.global_rank, self.trainer.world_size, pad=pad),
            num_workers=loader.num_workers,
            persistent_workers=loader.persistent_workers,
        )


def fine_tune(spec: TrainSpec) -> TrainResult:
    """Train to the best validation epoch: in this process on one device, or as DDP across
    `spec.devices` processes that learning.distributed starts and waits for (each runs `fit`)."""
    if spec.balance not in ("loss", "sampler", "none"):
        raise ValueError(f"Unknown class balance {spec.balance!r}; use loss, sampler or none.")
    started = time.monotonic()
    world = resolve_devices(spec.devices, spec.accelerator)
    train_items, val_items = list(spec.train), list(spec.val)
    if not val_items:
        # split here, once, so that every process trains and validates on the same images
        train_items, val_items = split_validation(train_items, spec.val_fraction, spec.seed)
    if not train_items or not val_items:
        raise ValueError("Training needs labeled images for both training and validation.")
    if len(val_items) < world:
        raise ValueError(f"{world} processes need at least {world} validation images ({len(val_items)} here).")
    spec = replace(spec, train=train_items, val=val_items)
    result = launch(spec, world) if world > 1 else fit(spec)
    assert result is not None  # a process on its own is rank 0
    result.duration_s = time.monotonic() - started
    return result


def fit(spec: TrainSpec, world: int = 1) -> TrainResult | None:
    """One process's part of a fine-tune on `spec.train` and `spec.val`: all of it when `world` is 1.
    Every rank trains; only rank 0 returns the result (its launcher writes it, the others write nothing)."""
    pl.seed_everything(spec.seed, workers=True, verbose=False)
    train_items, val_items = list(spec.train), list(spec.val)
    weights = class_weights(train_items, spec.model.num_classes) if spec.balance == "loss" else None
    module = XrayClassifier(
        spec.model,
        learning_rate=spec.learning_rate,
        weight_decay=spec.weight_decay,
        class_weights=weights,
        weights_path=spec.weights_path,
        pretrained=spec.pretrained and spec.init_from is None,
    )
    if spec.init_from is not None:
        module.net.load_state_dict(spec.init_from.state_dict())
    if on_cpu(spec.accelerator):
        # oneDNN's convolutions run NHWC far faster than NCHW on a CPU (docs/benchmarks.md, "CPU
        # training speed"); the network is handed back in the ordinary layout
        module.net.to(memory_format=torch.channels_last)
    data = RankData(
        train_items,
        val_items,
        spec.model.image_size,
        spec.batch_size,
        augment=spec.augment,
        num_workers=spec.num_workers,
        seed=spec.seed,
        balanced=spec.balance == "sampler",
        cache=spec.cache,
        epoch_size=spec.epoch_size,
        decode=spec.decode,
    )
    progress = ProgressReport(spec.progress or (lambda _: None))
    keep_best = KeepBest()
    ranks = RankCount()
    callbacks = [EarlyStopping("val_loss", mode="min", patience=spec.patience), keep_best, progress, ranks]
    if spec.freeze_backbone_epochs > 0:
        callbacks.append(_FreezeBackbone(spec.freeze_backbone_epochs))
    precision: Any = resolve_precision(spec.precision, spec.accelerator)  # a string Lightning checks
    trainer = quiet_trainer(
        spec.max_epochs,
        spec.accelerator,
        precision,
        spec.max_time_s,
        callbacks,
        devices=world,
        strategy=ddp(spec) if world > 1 else "auto",
    )
    trainer.fit(module, datamodule=data)
    if not trainer.is_global_zero:
        return None
    if keep_best.state is not None:
        module.net.load_state_dict(keep_best.state)
    net = module.net.cpu().to(memory_format=torch.contiguous_format).eval()
    return TrainResult(
        net=net,
        history=progress.history,
        **keep_best.recorded(trainer),
        train_size=len(train_items),
        val_size=len(val_items),
        accelerator=str(trainer.accelerator.__class__.__name__),
        precision=precision,
        val_items=val_items,
        world_size=trainer.world_size,
        backend=ranks.backend,
        samples_per_rank=ranks.per_rank,
    )
