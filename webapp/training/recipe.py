"""Which fine-tune a run does, and the operating point its model ships with.

A *round* (the default) starts from the champion and trains only its upper blocks and head on
stored trunk activations (learning.rounds): minutes on two CPU cores. A *full* fine-tune trains
every layer from the champion (or from ImageNet when there is none); it is the deeper, scheduled
run, on a GPU when there is one (as DDP across processes with `training.devices` above 1), and its
new trunk makes the next rounds compute activations afresh. Either way the model leaves with
per-class decision offsets fitted on the run's validation split, so that the gate's clinical
floors are met where the model can meet them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from learning.model import ModelSpec, XrayNet
from learning.operating_point import OperatingPoint, apply, fit_offsets
from learning.predict import score_pool
from learning.strategies import PoolScores
from learning.trunk import ActivationStore, pool_scores, split, splittable, warm
from registry.client import Registry
from registry.uris import CHAMPION
from webapp.config import Settings

if TYPE_CHECKING:
    # Lightning loads with the run that trains (in `train`), not with every page that shows a
    # gate or a model: it was 5 of the 12 s each `medal` command spent starting
    from learning.rounds import RoundSpec
    from learning.train import ProgressFn, TrainResult

log = logging.getLogger(__name__)
KINDS = ("round", "full")


@dataclass
class Trained:
    result: TrainResult
    kind: str  # round | full: what actually ran (a round without a champion runs in full)
    operating_point: OperatingPoint | None
    params: dict = field(default_factory=dict)  # what MLflow records about the recipe


def activation_store(settings: Settings) -> ActivationStore:
    return ActivationStore(Path(settings.home) / "activations")


def prune_activations(settings: Settings, registry: Registry) -> int:
    """Drop the stored activations of every trunk that no aliased version (champion, candidate,
    previous) has, so the store holds what the next round or a rollback can use; returns how many
    trunks went. Nothing goes while there is no champion."""
    aliases = registry.aliases()
    if CHAMPION not in aliases:
        return 0
    frozen = settings.training.round.frozen_blocks
    keep = set()
    for version in set(aliases.values()):
        net = registry.load(version)
        if can_round(net, net.spec, frozen):
            keep.add(split(net, frozen).key())
    return activation_store(settings).forget(keep)


def stored_scores(
    net: XrayNet, paths: list[str], settings: Settings, mc_passes: int = 0, seed: int = 0
) -> PoolScores | None:
    """Films' scores from the trunk activations rounds keep (learning.trunk.pool_scores): only the
    upper blocks and the head run, and the trunk over a film not stored yet runs once and is stored.
    None where the version cannot be cut where rounds cut it: its caller runs the whole network."""
    frozen = settings.training.round.frozen_blocks
    if not can_round(net, net.spec, frozen):
        return None
    return pool_scores(split(net, frozen), paths, activation_store(settings), mc_passes=mc_passes, seed=seed)


def warm_activations(settings: Settings, registry: Registry, paths: list[str]) -> int:
    """Between rounds: the champion's trunk activations of up to `training.round.warm_per_check` of
    `paths` not stored yet (the next round's films, then the gold films), so the round and its gate
    find them there. Returns how many were computed; none without a champion a round can cut."""
    limit = settings.training.round.warm_per_check
    version = registry.version_for(CHAMPION)
    if limit == 0 or version is None or not paths:
        return 0
    net = registry.load(version)
    frozen = settings.training.round.frozen_blocks
    if net.spec.backbone != settings.model.backbone or not can_round(net, net.spec, frozen):
        return 0  # the next run is a full fine-tune: it makes a new trunk
    return warm(split(net, frozen), paths, activation_store(settings), limit)


def can_round(champion: XrayNet | None, spec: ModelSpec, frozen_blocks: int) -> bool:
    """A round needs a champion of the configured backbone, one that can be cut at frozen_blocks."""
    if champion is None or champion.spec.backbone != spec.backbone or not splittable(spec.backbone):
        return False
    try:
        split(champion, frozen_blocks)
    except ValueError as error:
        log.warning("training.round.frozen_blocks does not fit %s (%s): a full fine-tune runs", spec.backbone, error)
        return False
    return True


def round_spec(
    settings: Settings,
    start: XrayNet,
    teacher: XrayNet | None,
    doctor: list,
    replay: list,
    renamed: dict[str, str],
    progress: ProgressFn | None = None,
) -> RoundSpec:
    """config.yaml's round: what `train` runs, and what the benchmarks run as the worker does."""
    from learning.rounds import RoundSpec

    cfg, rounds = settings.training, settings.training.round
    return RoundSpec(
        net=start,
        train=doctor,
        replay=replay,
        store=activation_store(settings),
        frozen_blocks=rounds.frozen_blocks,
        teacher=teacher,
        renamed=renamed,
        distill_weight=rounds.distill_weight,
        temperature=rounds.temperature,
        balance_sites=rounds.balance_sites,
        keep=rounds.keep,
        max_epochs=rounds.max_epochs,
        batch_size=rounds.batch_size,
        learning_rate=rounds.learning_rate,
        weight_decay=cfg.weight_decay,
        balance=cfg.balance,
        val_fraction=cfg.val_fraction,
        patience=rounds.patience,
        seed=cfg.seed,
        max_time_s=cfg.max_minutes * 60 if cfg.max_minutes else None,
        progress=progress,
    )


def train(
    kind: str,
    settings: Settings,
    spec: ModelSpec,
    doctor: list,
    replay: list,
    start: XrayNet | None,
    teacher: XrayNet | None,
    renamed: dict[str, str],
    progress: ProgressFn,
) -> Trained:
    """`doctor` and `replay` are LabeledImage lists; `start` is the champion with its head grown to
    today's classes (None: no champion, or another backbone), `teacher` the champion as it is."""
    from learning.rounds import RoundResult, fine_tune_round
    from learning.train import TrainSpec, fine_tune

    cfg = settings.training
    ran = "round" if kind == "round" and can_round(start, spec, cfg.round.frozen_blocks) else "full"
    params: dict = {"kind": ran}
    if ran == "round":
        assert start is not None
        rounds = cfg.round
        outcome: TrainResult = fine_tune_round(round_spec(settings, start, teacher, doctor, replay, renamed, progress))
        assert isinstance(outcome, RoundResult)
        params |= {
            "frozen_blocks": rounds.frozen_blocks,
            "trunk_key": outcome.trunk_key[:16],
            "activations_computed": outcome.activations_computed,
            "distilled": outcome.distilled,
        }
        probabilities = outcome.val_probabilities
    else:
        outcome = fine_tune(
            TrainSpec(
                model=spec,
                train=[*doctor, *replay],
                init_from=start,
                weights_path=settings.model.weights_path,
                max_epochs=cfg.max_epochs,
                batch_size=cfg.batch_size,
                learning_rate=cfg.learning_rate,
                weight_decay=cfg.weight_decay,
                augment=cfg.augment,
                val_fraction=cfg.val_fraction,
                patience=cfg.early_stopping_patience,
                seed=cfg.seed,
                accelerator=cfg.accelerator,
                balance=cfg.balance,
                freeze_backbone_epochs=cfg.freeze_backbone_epochs,
                max_time_s=cfg.max_minutes * 60 if cfg.max_minutes else None,
                precision=cfg.precision,
                devices=cfg.devices,
                num_workers=cfg.num_workers,
                progress=progress,
            )
        )
        params["world_size"] = outcome.world_size  # processes that trained it: DDP above 1
        probabilities = score_pool(outcome.net, [item.path for item in outcome.val_items]).probabilities
    point = operating_point(outcome, probabilities, settings)
    if point is not None:
        params["offsets"] = ",".join(f"{value:.2f}" for value in point.offsets)
    return Trained(outcome, ran, point, params)


def operating_point(
    outcome: TrainResult, probabilities: np.ndarray | None, settings: Settings
) -> OperatingPoint | None:
    """Fit the offsets on the run's validation split and write them into the network."""
    if probabilities is None or not outcome.val_items:
        return None
    names = outcome.net.spec.class_names
    labels = np.array([item.class_index for item in outcome.val_items])
    point = fit_offsets(probabilities, labels, names, dict(settings.gate.min_sensitivity))
    if point.moved:
        apply(outcome.net, point)
        log.info(
            "operating point: offsets %s, validation sensitivity %s -> %s",
            point.offsets,
            point.sensitivity_before,
            point.sensitivity_after,
        )
    return point
