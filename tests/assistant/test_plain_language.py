"""Plain-language summaries: short, no jargon, one grounded number, the notice; readable by textstat."""

import pytest
import textstat

from assistant.facts import NUMBER, PLAIN_DISCLAIMER, Facts, grounded, rounded_percent
from assistant.plain_language import PLAIN_CLASSES, plain_name, summary

# Flesch reading ease of the summaries measured 81-89 (docs/assistant.md); 60 is "plain English".
READING_EASE = 60
JARGON = ("pneumonia", "consolidation", "opacity", "activation", "heat map", "probability", "margin", "zone")
LOCATION = "Most of the activation is in the lower zone of the patient's right lung (62% of it); the patient's right."


def facts(probabilities, location=LOCATION):
    return Facts(prediction_id=4, model_version=2, probabilities=probabilities, location=location)


@pytest.mark.parametrize("name", ["normal", "bacterial pneumonia", "viral_pneumonia", "COVID-19", "tuberculosis"])
@pytest.mark.parametrize("top_p", [0.97, 0.81, 0.52])
def test_summary_is_plain_readable_and_grounded(name, top_p):
    other = "emphysema"
    fact = facts({name: top_p, other: 1 - top_p})
    text = summary(fact)
    assert text.endswith(PLAIN_DISCLAIMER)
    assert textstat.flesch_reading_ease(text) >= READING_EASE, text
    assert not [word for word in JARGON if word in text.lower()], text
    numbers = NUMBER.findall(text)
    assert numbers == [str(rounded_percent(top_p))], text
    assert f"about {numbers[0]} %" in text
    assert grounded(text, "\n".join(fact.lines()), list(fact.probabilities))
    assert plain_name(name) in text
    if top_p < 0.7:
        assert plain_name(other) in text  # an unsure result names the runner-up


def test_class_names_become_plain_words():
    assert plain_name("viral_pneumonia") == "a lung infection caused by a virus"
    assert plain_name("Bacterial Pneumonia") == "a lung infection caused by bacteria"
    assert plain_name("sarcoidosis") == "a finding called sarcoidosis"
    assert all("pneumonia" not in words for words, _ in PLAIN_CLASSES.values())


def test_the_rounded_confidence_is_never_certain_and_the_location_is_plain():
    assert [rounded_percent(p) for p in (0.999, 0.83, 0.01)] == [95, 85, 5]
    assert "bottom of the right lung" in summary(facts({"normal": 0.9, "viral pneumonia": 0.1}))
    assert "looked most" not in summary(facts({"normal": 0.9, "viral pneumonia": 0.1}, location=None))
