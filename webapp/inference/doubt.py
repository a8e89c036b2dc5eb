"""How a prediction reads to a person: one class, or "uncertain between X and Y" when the model's top
two classes are close or its top probability is low (config.yaml `doubt`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from webapp.classes import catalog
from webapp.config import DoubtSettings
from webapp.services import services


@dataclass(frozen=True)
class Call:
    top: str  # the class with the highest probability
    runner_up: str | None  # the second class (None with a single class)
    uncertain: bool

    @property
    def between(self) -> tuple[str, str] | None:
        """The two classes the model hesitates between, when it does."""
        return (self.top, self.runner_up) if self.uncertain and self.runner_up else None

    def words(self, display: Callable[[str], str]) -> str:
        """The call as a heading reads it, in display names: "Bacterial pneumonia", or
        "Uncertain between Bacterial pneumonia and Viral pneumonia"."""
        if self.between:
            first, second = self.between
            return f"Uncertain between {display(first)} and {display(second)}"
        return display(self.top)


def read(probabilities: Mapping[str, float], rule: DoubtSettings) -> Call:
    """The call a page, the report and the assistant give for these class probabilities."""
    ranked = sorted(probabilities.items(), key=lambda item: item[1], reverse=True)
    if not ranked:
        raise ValueError("a prediction has at least one class probability")
    (top, p_top), second = ranked[0], ranked[1] if len(ranked) > 1 else None
    close = second is not None and p_top - second[1] < rule.margin
    return Call(top=top, runner_up=second[0] if second else None, uncertain=close or p_top < rule.below)


def configured(probabilities: Mapping[str, float]) -> Call:
    """The call under this deployment's rule (config.yaml `doubt`): what the pages, the report and the
    assistant show. The Jinja global `doubt_call`."""
    return read(probabilities, services().settings.doubt)


def words(probabilities: Mapping[str, float]) -> str:
    """The call in a person's words, display names included; the Jinja global `call_words` and the
    macro `model_call` in templates/_call.html print the same text."""
    return configured(probabilities).words(catalog.display)
