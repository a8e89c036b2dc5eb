"""Intent classification on 151 phrasings a doctor might type (tests/assistant/intent_phrasings.yaml).

The sentence encoder loads once per process (assistant/embeddings.py), so this module costs one load."""

import logging
from collections import Counter
from pathlib import Path

import pytest
import yaml

from assistant import embeddings
from assistant.compose import compose
from assistant.facts import DISCLAIMER, NUMBER
from assistant.intents import ANSWERS, EXAMPLES, INTENTS, REFUSALS, IntentClassifier
from assistant.knowledge import KnowledgeBase
from tests.assistant.test_assistant import known_facts

HERE = Path(__file__).parent
SAFETY = ("prognosis", "treatment", "other_patients", "identity", "injection")


def phrasings(name):
    data = yaml.safe_load((HERE / name).read_text())
    return [(intent, question) for intent, questions in data.items() for question in questions]


PHRASINGS = phrasings("intent_phrasings.yaml")
HOLDOUT = phrasings("intent_phrasings_holdout.yaml")


@pytest.fixture(scope="module")
def kb():
    return KnowledgeBase()


@pytest.fixture(scope="module")
def classifier():
    classifier = IntentClassifier()
    assert embeddings.encoder(classifier.package, wait=120) is not None, embeddings.error(classifier.package)
    return classifier


def test_the_phrasing_set_is_large_varied_and_not_the_examples():
    assert len(PHRASINGS) >= 100
    assert {intent for intent, _ in PHRASINGS} == set(INTENTS)
    examples = {text.lower().strip("?!. ") for texts in EXAMPLES.values() for text in texts}
    assert not [q for _, q in PHRASINGS + HOLDOUT if q.lower().strip("?!. ") in examples]


def accuracy(classifier, kb, items):
    results = [(intent, classifier.classify(question, kb.aliases)) for intent, question in items]
    wrong = [(intent, u.intent, u.method, q) for (intent, u), (_, q) in zip(results, items) if u.intent != intent]
    return results, wrong


def test_intents_are_understood_on_the_phrasing_set(classifier, kb):
    results, wrong = accuracy(classifier, kb, PHRASINGS)
    assert 1 - len(wrong) / len(results) >= 0.95, wrong
    assert Counter(u.method for _, u in results)["embeddings"] > 30  # the encoder, not only rules
    # every safety question is refused with its own intent, and none of them is answered
    assert not [w for w in wrong if w[0] in SAFETY], wrong
    assert all(u.intent in REFUSALS for intent, u in results if intent in SAFETY)


def test_no_held_out_safety_question_is_answered(classifier, kb):
    results, wrong = accuracy(classifier, kb, HOLDOUT)
    assert 1 - len(wrong) / len(results) >= 0.85, wrong
    assert not [(i, u.intent) for i, u in results if i in SAFETY and u.intent in ANSWERS]


def test_in_scope_answers_are_grounded_for_every_phrasing(classifier, kb):
    facts = known_facts()
    for _, question in PHRASINGS:
        answer = compose(question, facts, kb, classifier)
        assert answer.source == ("refusal" if answer.intent in REFUSALS else "template"), question
        allowed = "\n".join(facts.lines() + answer.facts_used)
        assert all(n in allowed for n in NUMBER.findall(answer.text.replace(DISCLAIMER, ""))), (question, answer.text)


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_without_the_encoder_rules_still_refuse_and_say_so(kb):
    # a handler on the module's own logger: what other libraries do to the root logger cannot hide it
    collect, logger = _Collect(), logging.getLogger("assistant.embeddings")
    logger.addHandler(collect)
    try:
        degraded = IntentClassifier("no_such_encoder_for_the_rules_test", wait=30)
        # one that no rule knows: classified by the keyword fallback and marked as such
        understood = degraded.classify("Explain the basis of this", kb.aliases)
    finally:
        logger.removeHandler(collect)
    logged = "\n".join(collect.lines)
    assert degraded.degraded and "no_such_encoder_for_the_rules_test" in logged and "degraded" in logged
    assert (understood.intent, understood.method) == ("why", "keywords")
    assert degraded.classify("How sure is it?", kb.aliases).intent == "confidence"
    results, wrong = accuracy(degraded, kb, PHRASINGS)
    assert not [
        (i, u.intent, q) for (i, u), (_, q) in zip(results, PHRASINGS) if i in SAFETY[:3] and u.intent in ANSWERS
    ]
    answer = compose("why?", known_facts(), kb, degraded)
    assert answer.understood_by in ("keywords", "rules") and answer.source == "template"
