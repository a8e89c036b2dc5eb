"""The LightningModule that trains an XrayNet: its loss, validation metrics and optimiser.

Apart from learning.model so that loading and serving a network never import Lightning and
torchmetrics (7 s of every `medal` command's start before, docs/benchmarks.md, "Start-up")."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn

from learning.model import ModelSpec, XrayNet


class XrayClassifier(pl.LightningModule):
    def __init__(
        self,
        spec: ModelSpec,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        class_weights: list[float] | None = None,
        weights_path: str | None = None,
        pretrained: bool = True,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["weights_path", "pretrained"])
        self.net = XrayNet(spec, weights_path=weights_path, pretrained=pretrained)
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.loss = nn.CrossEntropyLoss(weight=weight)
        self.val_auc = torchmetrics.AUROC(task="multiclass", num_classes=spec.num_classes)
        self.val_acc = torchmetrics.Accuracy(task="multiclass", num_classes=spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        images, targets = batch
        loss = self.loss(self(images), targets)
        # sync_dist: under DDP the logged loss is every rank's images (a no-op on one device)
        self.log(
            "train_loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(targets), sync_dist=True
        )
        return loss

    def validation_step(self, batch, batch_idx):
        images, targets = batch
        logits = self(images)
        # the epoch's loss is summed and counted over every rank's share of the images, so each rank
        # (and early stopping) sees the same figure; the torchmetrics objects sync their own states
        self.log("val_loss", self.loss(logits, targets), prog_bar=True, batch_size=len(targets), sync_dist=True)
        self.log_validation_metrics(logits, targets)

    def log_validation_metrics(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """The epoch's validation AUC and accuracy, updated with one batch."""
        probabilities = logits.float().softmax(dim=1)
        self.val_auc.update(probabilities, targets)
        self.val_acc.update(probabilities, targets)
        self.log("val_auc", self.val_auc, prog_bar=True, batch_size=len(targets))
        self.log("val_acc", self.val_acc, batch_size=len(targets))

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay
        )
        epochs = max(1, self.trainer.max_epochs or 1)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
