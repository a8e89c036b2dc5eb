"""Scoring the intent classifier on labelled phrasings: per intent, overall, and each miss with how it was read."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from assistant.intents import IntentClassifier


@dataclass(frozen=True)
class Miss:
    expected: str
    got: str
    method: str  # rules | embeddings | keywords
    question: str


@dataclass
class Score:
    right: Counter[str] = field(default_factory=Counter)  # intent -> phrasings understood
    total: Counter[str] = field(default_factory=Counter)  # intent -> phrasings asked
    misses: list[Miss] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return sum(self.right.values()) / max(1, sum(self.total.values()))

    def lines(self) -> list[str]:
        rows = [f"{intent}: {self.right[intent]} of {self.total[intent]}" for intent in self.total]
        overall = sum(self.right.values()), sum(self.total.values())
        rows.append(f"overall: {overall[0]} of {overall[1]} ({self.accuracy:.1%})")
        rows += [f"miss: {m.question!r} ({m.expected}) read as {m.got} by {m.method}" for m in self.misses]
        return rows


def phrasings(path: Path) -> list[tuple[str, str]]:
    """(intent, question) pairs from a YAML file: `intent: [questions]`, or a group of `[intent, question]` pairs."""
    pairs = []
    for key, items in yaml.safe_load(path.read_text()).items():
        for item in items:
            pairs.append((item[0], item[1]) if isinstance(item, list) else (key, item))
    return pairs


def score(classifier: IntentClassifier, items: list[tuple[str, str]], class_aliases: dict[str, list[str]]) -> Score:
    result = Score()
    for expected, question in items:
        understood = classifier.classify(question, class_aliases)
        result.total[expected] += 1
        if understood.intent == expected:
            result.right[expected] += 1
        else:
            result.misses.append(Miss(expected, understood.intent, understood.method, question))
    return result
