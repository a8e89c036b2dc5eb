"""The held-out phrasings of issue 21 (tests/assistant/heldout.yaml), never used for tuning: the
classifier must keep the accuracy measured on them (docs/assistant.md), and each of the issue's
twelve questions but the one recorded miss must be understood."""

from pathlib import Path

import pytest

from assistant import embeddings
from assistant.evaluation import phrasings, score
from assistant.intents import IntentClassifier
from assistant.knowledge import KnowledgeBase

HELDOUT = Path(__file__).parent / "heldout.yaml"
FLOOR = 0.95  # measured 43 of 44 (97.7 %) when the set was first scored; one miss in 44 is allowed


@pytest.fixture(scope="module")
def classifier():
    classifier = IntentClassifier()
    assert embeddings.encoder(classifier.package, wait=120) is not None, embeddings.error(classifier.package)
    return classifier


def test_the_held_out_set_covers_the_new_intents_and_the_issues_questions():
    items = phrasings(HELDOUT)
    for intent in ("finding", "why_not", "errors", "training_data", "meaning"):
        assert sum(expected == intent for expected, _ in items) >= 5, intent
    assert len(items) >= 12 + 5 * 5


def test_held_out_accuracy_keeps_its_measured_floor(classifier):
    result = score(classifier, phrasings(HELDOUT), KnowledgeBase().aliases)
    assert result.accuracy >= FLOOR, result.lines()
    new = ("finding", "why_not", "errors", "training_data", "meaning")
    assert all(result.right[intent] == result.total[intent] for intent in new), result.lines()
