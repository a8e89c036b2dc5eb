"""The study report's plain summary: written from the doctor's final label (amendments included), the
program's confidence quoted only when its answer is that label; plain, readable, one number at most."""

from __future__ import annotations

import pytest
import textstat

from assistant.facts import NUMBER, PLAIN_DISCLAIMER, Facts
from assistant.plain_language import report_summary

BACTERIA, VIRUS = "caused by bacteria", "caused by a virus"
LOCATION = "Most of the activation is in the lower zone of the patient's right lung (62% of it); the patient's right."


def facts(probabilities: dict[str, float]) -> Facts:
    return Facts(prediction_id=1, model_version=3, probabilities=probabilities, location=LOCATION)


MODEL_SAYS_BACTERIAL = facts({"bacterial_pneumonia": 0.75, "viral_pneumonia": 0.2, "normal": 0.05})


def test_an_amended_study_speaks_of_the_amended_class_and_quotes_no_other_confidence():
    text = report_summary("viral_pneumonia", MODEL_SAYS_BACTERIAL, amended=True)
    assert VIRUS in text and BACTERIA not in text
    assert NUMBER.findall(text) == []  # the 75 % belongs to bacterial pneumonia, not the doctor's answer
    assert "looked most" not in text  # the heat map explains the program's class, not the doctor's
    assert "changed the answer" in text and "the one that counts" in text


def test_a_confirmed_call_quotes_the_programs_confidence_in_it():
    text = report_summary("bacterial_pneumonia", MODEL_SAYS_BACTERIAL)
    assert BACTERIA in text and VIRUS not in text
    assert NUMBER.findall(text) == ["75"] and "same answer" in text
    assert "bottom of the right lung" in text


def test_doubt_is_said_and_no_number_is_given_for_a_confirmed_close_call():
    close = facts({"bacterial_pneumonia": 0.48, "viral_pneumonia": 0.46, "normal": 0.06})
    text = report_summary("viral_pneumonia", close, between=("bacterial_pneumonia", "viral_pneumonia"))
    assert "not sure" in text and VIRUS in text and NUMBER.findall(text) == []
    unchecked = report_summary(None, close, between=("bacterial_pneumonia", "viral_pneumonia"))
    assert "No doctor has checked it yet" in unchecked and BACTERIA in unchecked and VIRUS in unchecked


def test_a_class_without_plain_words_reads_as_its_display_name():
    named = facts({"sarcoidosis_stage_2": 0.8, "normal": 0.2})
    text = report_summary("sarcoidosis_stage_2", named, displays={"sarcoidosis_stage_2": "Sarcoidosis (stage II)"})
    assert "a finding called Sarcoidosis (stage II)" in text and "sarcoidosis_stage_2" not in text


@pytest.mark.parametrize(
    ("final", "amended"), [(None, False), ("normal", False), ("viral_pneumonia", True), ("bacterial_pneumonia", False)]
)
def test_every_version_is_plain_and_ends_with_the_notice(final, amended):
    text = report_summary(final, MODEL_SAYS_BACTERIAL, amended=amended)
    assert text.endswith(PLAIN_DISCLAIMER)
    assert textstat.flesch_reading_ease(text) >= 60, text
    assert "pneumonia" not in text.lower() and "probability" not in text.lower()
    assert len(NUMBER.findall(text)) <= 1
