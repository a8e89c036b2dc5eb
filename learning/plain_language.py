"""Plain words for patients: class names and terms without jargon, one rounded number at most."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # learning.assistant imports this module; the type is only for hints
    from learning.assistant import Facts

NOTICE = "A doctor checks every result; this tool supports, and does not replace, the doctor's judgement."

# Class names (spelled as topic_key spells them) -> (what it is, in a few words; one short sentence more).
PLAIN_CLASSES: dict[str, tuple[str, str]] = {
    "normal": ("no sign of illness in the lungs", "The lungs look clear and healthy on this X-ray."),
    "pneumonia": ("a lung infection", "An infection makes parts of the lung fill with fluid."),
    "bacterial pneumonia": (
        "a lung infection caused by bacteria",
        "Germs called bacteria make part of the lung fill with fluid.",
    ),
    "viral pneumonia": (
        "a lung infection caused by a virus",
        "A virus, like the flu, makes the lungs sore and a bit swollen.",
    ),
    "covid 19": (
        "a lung infection caused by the COVID virus",
        "The COVID virus can make both lungs sore and swollen.",
    ),
    "tuberculosis": (
        "TB, a slow lung infection",
        "TB is caused by a germ that grows slowly, most often in the top of the lungs.",
    ),
    "emphysema": (
        "damage to the tiny air sacs in the lungs",
        "The air sacs get stretched, so it is harder to breathe out.",
    ),
}
# Words of the ordinary answers -> plain words, for the few that reach a plain answer.
PLAIN_TERMS = {
    "upper": "top",
    "middle": "middle",
    "lower": "bottom",
}
_LOCATION = re.compile(r"the (upper|middle|lower) zones? of (?:the patient's )?(left lung|right lung|both lungs)", re.I)


def key(name: str) -> str:
    """The one spelling of a class name (as learning.assistant.topic_key)."""
    return re.sub(r"[\s_\-]+", " ", name.lower()).strip()


def plain_name(name: str) -> str:
    """ "viral pneumonia" -> "a lung infection caused by a virus"; an unknown class keeps its name."""
    found = PLAIN_CLASSES.get(key(name))
    return found[0] if found else f"a finding called {key(name)}"


def plain_meaning(name: str) -> str:
    """One short sentence on what the class is, or an honest "no plain words" for a new class."""
    found = PLAIN_CLASSES.get(key(name))
    return found[1] if found else "I do not have plain words for this yet. Ask your doctor what it means."


def rounded_percent(probability: float) -> int:
    """The one number a plain answer may hold: to the nearest 5, never 0 or 100 (a score is never certain)."""
    return int(min(95, max(5, 5 * round(probability * 20))))


def confidence_phrase(probability: float) -> str:
    """ "about 80 %" (the form Facts.lines() lists, so the number is grounded)."""
    return f"about {rounded_percent(probability)} %"


def sureness(probability: float) -> str:
    if probability >= 0.9:
        return "quite sure"
    if probability >= 0.7:
        return "fairly sure"
    return "not sure"


def plain_location(location: str | None) -> str | None:
    """ "the lower zone of the patient's right lung" -> "the bottom of the right lung"."""
    match = _LOCATION.search(location or "")
    if match is None:
        return None
    zone, side = PLAIN_TERMS[match.group(1).lower()], match.group(2).lower()
    return f"the {zone} of {'both lungs' if side == 'both lungs' else 'the ' + side}"


def summary(facts: Facts) -> str:
    """A short plain summary of one prediction for a patient-facing report.

    Short sentences, no jargon, one number (the rounded confidence of the top class) and the notice."""
    ranking = facts.ranking
    top, top_p = ranking[0]
    sentences = [
        "A computer program looked at this chest X-ray.",
        f"It thinks the X-ray most likely shows {plain_name(top)}.",
        f"It is {sureness(top_p)}: {confidence_phrase(top_p)} sure.",
    ]
    if top_p < 0.7 and len(ranking) > 1:
        sentences.append(f"It could also be {plain_name(ranking[1][0])}.")
    where = plain_location(facts.location)
    if where:
        sentences.append(f"It looked most at {where}.")
    sentences.append(NOTICE)
    return " ".join(sentences)
