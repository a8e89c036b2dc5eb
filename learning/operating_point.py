"""Operating points: per-class decision offsets that meet the clinical sensitivity floors.

A network's raw argmax is one way to decide among classes, not the only one. Adding an offset to
a class's logit moves the decision boundary towards or away from it (a shift of that class's
prior), so a class that lost sensitivity only because a new class took some of its probability
mass can get it back. The offsets are fitted on the training run's validation split, the smallest
that meet each floor where the floor can be met there, and then written into the head's bias:
the network itself decides with them, so serving, scoring, the gate, the exported graph, the
reports and the assistant all use the same operating point without knowing it exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from learning.model import XrayNet


@dataclass(frozen=True)
class OperatingPoint:
    offsets: list[float]  # per class, added to the logits
    sensitivity_before: dict[str, float]
    sensitivity_after: dict[str, float]
    accuracy_before: float
    accuracy_after: float
    unreachable: dict[str, str] = field(default_factory=dict)  # class -> why its floor is not met on validation
    floors: dict[str, float] = field(default_factory=dict)  # the floors asked for, of the classes the model has
    classes: list[str] = field(default_factory=list)  # the model's classes, in the order of the offsets

    @property
    def moved(self) -> bool:
        return any(offset != 0.0 for offset in self.offsets)

    def to_dict(self) -> dict:
        return {
            "offsets": [round(value, 4) for value in self.offsets],
            "sensitivity_before": self.sensitivity_before,
            "sensitivity_after": self.sensitivity_after,
            "accuracy_before": self.accuracy_before,
            "accuracy_after": self.accuracy_after,
            "unreachable": self.unreachable,
            "floors": self.floors,
            "classes": self.classes,
        }


def _sensitivities(labels: np.ndarray, called: np.ndarray, classes: int) -> np.ndarray:
    out = np.full(classes, np.nan)
    for index in range(classes):
        positive = labels == index
        if positive.any():
            out[index] = float(np.mean(called[positive] == index))
    return out


def fit_offsets(
    probabilities: np.ndarray,
    labels: np.ndarray,
    names: list[str],
    floors: dict[str, float],
    min_support: int = 10,
    max_offset: float = 2.0,
    step: float = 0.05,
    max_accuracy_drop: float = 0.03,
) -> OperatingPoint:
    """Raise the offset of the class furthest below its floor, a step at a time, until every floor
    with at least `min_support` validation images is met, an offset reaches `max_offset`, or
    accuracy would fall by more than `max_accuracy_drop`. Classes with fewer images keep offset 0:
    a floor judged on a handful of films is noise (config.yaml's gate, for the same reason, lets a
    floor wait below 10 gold films of its class). A floor still unmet when the climb stops is not
    chased: the class furthest below its floor is set aside and the offsets are fitted again for
    the rest, until every floor left is met. Otherwise two classes the model confuses take turns,
    each raised past the other, until both reach `max_offset` and the third class has in effect
    been pushed down by it."""
    classes = len(names)
    logits = np.log(np.clip(probabilities, 1e-12, None))
    support = np.bincount(labels, minlength=classes)
    called = _decide(logits, np.zeros(classes))
    before = _sensitivities(labels, called, classes)
    accuracy_before = float(np.mean(called == labels)) if len(labels) else float("nan")
    judged = {names.index(name): floor for name, floor in floors.items() if name in names}
    unreachable: dict[str, str] = {}
    for index in list(judged):
        if support[index] < min_support:
            unreachable[names[index]] = f"only {support[index]} validation images: too few to set its operating point"
            judged.pop(index)
    asked = dict(judged)
    while True:  # a floor no operating point meets on validation is not chased: the rest are fitted again
        offsets = _climb(logits, labels, judged, max_offset, step, max_accuracy_drop)
        called = _decide(logits, offsets)
        after = _sensitivities(labels, called, classes)
        missed = {index: floor for index, floor in judged.items() if after[index] < floor}
        if not missed:
            break
        judged.pop(min(missed, key=lambda index: after[index] - missed[index]))
    for index, floor in asked.items():
        if index not in judged and after[index] < floor:
            unreachable[names[index]] = (
                f"sensitivity {after[index]:.2f} on validation, below the floor {floor:.2f}: no operating "
                "point tried met it without giving up accuracy or another floor, so it is not chased"
            )
    return OperatingPoint(
        offsets=[float(value) for value in offsets],
        sensitivity_before={names[i]: round(float(v), 4) for i, v in enumerate(before) if np.isfinite(v)},
        sensitivity_after={names[i]: round(float(v), 4) for i, v in enumerate(after) if np.isfinite(v)},
        accuracy_before=round(accuracy_before, 4),
        accuracy_after=round(float(np.mean(called == labels)) if len(labels) else float("nan"), 4),
        unreachable=unreachable,
        floors={name: floor for name, floor in floors.items() if name in names},
        classes=list(names),
    )


def _decide(logits: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return (logits + offsets).argmax(axis=1)


def _climb(
    logits: np.ndarray,
    labels: np.ndarray,
    judged: dict[int, float],
    max_offset: float,
    step: float,
    max_accuracy_drop: float,
) -> np.ndarray:
    """Raise the offset of the class furthest below its floor, a step at a time, while an offset may
    still rise and accuracy holds."""
    classes = logits.shape[1]
    offsets = np.zeros(classes)
    accuracy_before = float(np.mean(_decide(logits, offsets) == labels))
    for _ in range(int(max_offset / step) * max(len(judged), 1)):
        sensitivity = _sensitivities(labels, _decide(logits, offsets), classes)
        short = {index: sensitivity[index] - floor for index, floor in judged.items() if sensitivity[index] < floor}
        short = {index: gap for index, gap in short.items() if offsets[index] + step <= max_offset + 1e-9}
        if not short:
            break
        trial = offsets.copy()
        trial[min(short, key=lambda index: short[index])] += step
        if accuracy_before - float(np.mean(_decide(logits, trial) == labels)) > max_accuracy_drop:
            break
        offsets = trial
    return offsets


@torch.no_grad()
def apply(net: XrayNet, point: OperatingPoint) -> XrayNet:
    """Write the offsets into the head's bias: from now on the network decides at this point."""
    net.head.bias.add_(torch.tensor(point.offsets, dtype=net.head.bias.dtype, device=net.head.bias.device))
    return net
