"""What the assistant knows about one prediction (Facts), what it says back (Answer), and the one disclaimer."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

# The one disclaimer: the end of every chat answer and the study report's notice.
DISCLAIMER = "medal supports and does not replace the doctor's judgement."
# The disclaimer in plain words, for patients: the end of every plain answer and of the report's plain summary.
PLAIN_DISCLAIMER = "A doctor checks every result; this tool supports, and does not replace, the doctor's judgement."
NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def pct(value: float) -> str:
    """The one way numbers appear in facts and answers, so the grounding check is exact."""
    return f"{value * 100:.1f}%"


def rounded_percent(probability: float) -> int:
    """The one number a plain answer may hold: to the nearest 5, never 0 or 100 (a score is never certain)."""
    return int(min(95, max(5, 5 * round(probability * 20))))


def confidence_phrase(probability: float) -> str:
    """ "about 80 %" (the form Facts.lines() lists, so the number is grounded)."""
    return f"about {rounded_percent(probability)} %"


def topic_key(name: str) -> str:
    """One spelling for a class and a knowledge-base topic: "bacterial_pneumonia" and
    "bacterial pneumonia", "covid_19" and "COVID-19" are the same thing."""
    return re.sub(r"[\s_\-]+", " ", name.lower()).strip()


@dataclass(frozen=True)
class GoldError:
    """One kind of mistake on the gold set: studies of class `truth` the model called `called`."""

    truth: str
    called: str
    count: int


@dataclass(frozen=True)
class TrainingUse:
    """Whether this image was in what the model was trained on, from the training manifests of the
    model version and the versions it was fine-tuned from (newest first)."""

    model_version: int
    used_by: tuple[int, ...] = ()  # versions whose training manifest lists this image
    checked: tuple[int, ...] = ()  # versions whose manifest could say (it lists images by content)
    unknown: tuple[int, ...] = ()  # versions without such a manifest: whether they used it is not known


@dataclass
class Facts:
    """What the system knows about one prediction; every number an answer may use is here."""

    prediction_id: int
    model_version: int
    probabilities: dict[str, float]
    location: str | None = None
    gold_metrics: dict[str, float] = field(default_factory=dict)  # for the predicted class
    gold_size: int | None = None
    doctor_labels: list[str] = field(default_factory=list)  # "your label: normal", ...
    # the gold-set metrics of every class the registry measured, {"viral pneumonia": {"sensitivity": 0.9}}
    gold_by_class: dict[str, dict[str, float]] = field(default_factory=dict)
    clinical: list[str] = field(default_factory=list)  # "CRP 85 mg/L", from webapp.clinical.records.describe
    # what a person reads for each class ("Bacterial pneumonia"); an identifier without one reads as itself
    display_names: dict[str, str] = field(default_factory=dict)
    uncertain_between: tuple[str, str] | None = None  # the deployment's doubt rule (config.yaml `doubt`)
    gold_errors: list[GoldError] = field(default_factory=list)  # the gold set's confusions, most frequent first
    gold_errors_size: int | None = None  # the gold studies the confusions were counted on
    training_use: TrainingUse | None = None
    # the heat map's location for another class, computed when asked (a second Grad-CAM target)
    evidence_for: Callable[[str], str | None] | None = field(default=None, repr=False, compare=False)

    def name(self, class_name: str) -> str:
        """The class as a person reads it."""
        return self.display_names.get(class_name) or class_name

    @property
    def ranking(self) -> list[tuple[str, float]]:
        return sorted(self.probabilities.items(), key=lambda kv: kv[1], reverse=True)

    @property
    def predicted_class(self) -> str:
        return self.ranking[0][0]

    @property
    def margin(self) -> float:
        ranked = self.ranking
        return ranked[0][1] - ranked[1][1] if len(ranked) > 1 else ranked[0][1]

    def certainty_words(self) -> str:
        top = self.ranking[0][1]
        if top >= 0.9:
            return "confident"
        if top >= 0.7:
            return "fairly sure"
        return "unsure"

    def lines(self) -> list[str]:
        top = self.name(self.predicted_class)
        lines = [
            f"Prediction {self.prediction_id} was made by model version {self.model_version}.",
            "Class probabilities: " + ", ".join(f"{self.name(name)} {pct(p)}" for name, p in self.ranking) + ".",
            f"Top class: {top}; the margin over the next class is {pct(self.margin)}.",
            # the one number plain answers use, listed so that it is grounded like the others
            f"In plain words: {confidence_phrase(self.ranking[0][1])} sure of {top}.",
        ]
        if self.uncertain_between:
            first, second = self.uncertain_between
            lines.append(f"The call is uncertain between {self.name(first)} and {self.name(second)}.")
        if self.location:
            lines.append(f"Heat map: {self.location}")
        if self.gold_metrics:
            parts = ", ".join(f"{name} {pct(value)}" for name, value in self.gold_metrics.items())
            size = f" ({self.gold_size} adjudicated images)" if self.gold_size else ""
            lines.append(f"Model version {self.model_version} on the gold set{size}, for {top}: {parts}.")
        for name, metrics in self.gold_by_class.items():
            if name != self.predicted_class or not self.gold_metrics:
                parts = ", ".join(f"{key} {pct(value)}" for key, value in metrics.items())
                lines.append(f"Model version {self.model_version} on the gold set, for {self.name(name)}: {parts}.")
        if self.gold_errors_size:
            errors = "; ".join(
                f"{self.name(e.truth)} called {self.name(e.called)} {e.count} times" for e in self.gold_errors
            )
            measured = self.gold_errors_size
            lines.append(f"Model version {self.model_version}'s errors on {measured} gold studies: {errors or 'none'}.")
        if self.training_use is not None:
            lines.append(self.training_use_line())
        lines.extend(self.doctor_labels)
        lines.extend(f"Clinical record: {line}" for line in self.clinical)
        return lines

    def training_use_line(self) -> str:
        use = self.training_use
        assert use is not None
        checked = ", ".join(str(v) for v in use.checked) or "none"
        used = ", ".join(str(v) for v in use.used_by) or "none"
        unknown = ", ".join(str(v) for v in use.unknown) or "none"
        return (
            f"Training manifests of model version {use.model_version} and its ancestors: read for versions {checked}; "
            f"listing this image: {used}; not known for: {unknown}."
        )


@dataclass(frozen=True)
class Answer:
    text: str
    facts_used: list[str]
    intent: str
    source: str  # template | language_model | refusal
    understood_by: str = "rules"  # rules | embeddings | keywords (degraded: the encoder is not available)
    mode: str = "standard"  # standard | plain
    topic: str | None = None  # the class the answer is about, when the question or its thread named one


def grounded(text: str, allowed: str, class_names: list[str]) -> bool:
    """True when every number and every class name in `text` also appears in `allowed`."""
    allowed_numbers = set(NUMBER.findall(allowed))
    if any(number not in allowed_numbers for number in NUMBER.findall(text)):
        return False
    lowered, allowed_lower = text.lower(), allowed.lower()
    return all(name.lower() in allowed_lower for name in class_names if name.lower() in lowered)
