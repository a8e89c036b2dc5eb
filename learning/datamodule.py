"""The training and validation loaders of a fine-tune, as Lightning's data module.

Apart from learning.data so that serving, which reads images through learning.data, never
imports Lightning (docs/benchmarks.md, "Start-up")."""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, RandomSampler, Sampler

from learning.data import Decoder, LabeledImage, XrayDataset, balanced_sampler
from learning.decoding import load_grayscale


class XrayDataModule(pl.LightningDataModule):
    """Training and validation loaders. `balanced` draws training images with class-balanced
    weights (with replacement, one epoch = as many draws as there are images), so a class with
    five images is seen as often as one with five thousand; `epoch_size` sets a minimum
    number of draws per epoch (small label sets are repeated, each copy augmented afresh)."""

    def __init__(
        self,
        train: Sequence[LabeledImage],
        val: Sequence[LabeledImage],
        size: int,
        batch_size: int,
        augment: bool = True,
        num_workers: int = 0,
        seed: int = 0,
        balanced: bool = False,
        cache: bool = True,
        epoch_size: int = 0,
        decode: Decoder = load_grayscale,
    ):
        super().__init__()
        self.train_items, self.val_items = list(train), list(val)
        self.size, self.batch_size, self.augment = size, batch_size, augment
        self.num_workers, self.seed = num_workers, seed
        self.balanced, self.cache, self.epoch_size = balanced, cache, epoch_size
        self.decode = decode

    def setup(self, stage: str | None = None) -> None:
        if not hasattr(self, "train_set"):
            self.train_set = XrayDataset(
                self.train_items, self.size, augment=self.augment, cache=self.cache, decode=self.decode
            )
            self.val_set = XrayDataset(self.val_items, self.size, augment=False, cache=self.cache, decode=self.decode)

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        draws = max(len(self.train_set), self.epoch_size)
        sampler: Sampler
        if self.balanced:
            sampler = balanced_sampler(self.train_set.labels, draws, generator)
        elif draws > len(self.train_set):
            sampler = RandomSampler(self.train_set, replacement=True, num_samples=draws, generator=generator)
        else:
            sampler = RandomSampler(self.train_set, generator=generator)
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val_set,
            batch_size=self.batch_size * 2,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
