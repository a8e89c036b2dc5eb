"""How a prediction reads to a person: one class, or "uncertain between X and Y" when the model's top
two classes are close or its top probability is low (config.yaml `doubt`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from webapp.config import DoubtSettings


@dataclass(frozen=True)
class Call:
    top: str  # the class with the highest probability
    runner_up: str | None  # the second class (None with a single class)
    uncertain: bool

    @property
    def between(self) -> tuple[str, str] | None:
        """The two classes the model hesitates between, when it does."""
        return (self.top, self.runner_up) if self.uncertain and self.runner_up else None


def read(probabilities: Mapping[str, float], rule: DoubtSettings) -> Call:
    """The call a page, the report and the assistant give for these class probabilities."""
    ranked = sorted(probabilities.items(), key=lambda item: item[1], reverse=True)
    if not ranked:
        raise ValueError("a prediction has at least one class probability")
    (top, p_top), second = ranked[0], ranked[1] if len(ranked) > 1 else None
    close = second is not None and p_top - second[1] < rule.margin
    return Call(top=top, runner_up=second[0] if second else None, uncertain=close or p_top < rule.below)
