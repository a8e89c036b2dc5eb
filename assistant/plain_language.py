"""Plain words for patients: class names and terms without jargon, one rounded number at most."""

from __future__ import annotations

import re
from collections.abc import Mapping

from assistant.facts import PLAIN_DISCLAIMER, Facts, confidence_phrase, topic_key
from assistant.intents import REFUSALS

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


def plain_name(name: str) -> str:
    """ "viral pneumonia" -> "a lung infection caused by a virus"; an unknown class keeps its name."""
    found = PLAIN_CLASSES.get(topic_key(name))
    return found[0] if found else f"a finding called {topic_key(name)}"


def plain_meaning(name: str) -> str:
    """One short sentence on what the class is, or an honest "no plain words" for a new class."""
    found = PLAIN_CLASSES.get(topic_key(name))
    return found[1] if found else "I do not have plain words for this yet. Ask your doctor what it means."


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

    Short sentences, no jargon, one number (the rounded confidence of the top class) and the disclaimer."""
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
    sentences.append(PLAIN_DISCLAIMER)
    return " ".join(sentences)


def report_summary(
    final: str | None,
    facts: Facts | None,
    *,
    displays: Mapping[str, str] | None = None,
    between: tuple[str, str] | None = None,
    amended: bool = False,
) -> str:
    """The study report's "In plain words", written from the doctor's final label (an amendment's
    included) when there is one, else from the program's suggestion, said to be unchecked.

    `displays` gives a class without plain words its display name; `between` is the two classes the
    program hesitates between (the deployment's doubt rule). The program's confidence is quoted only
    when its answer is the final label: a number for another class would contradict the doctor."""
    displays = displays or {}

    def words(name: str) -> str:
        found = PLAIN_CLASSES.get(topic_key(name))
        return found[0] if found else f"a finding called {displays.get(name) or topic_key(name)}"

    if final is None:
        if facts is None:
            return "No doctor and no computer program has looked at this X-ray yet. " + PLAIN_DISCLAIMER
        top, top_p = facts.ranking[0]
        sentences = [
            "A computer program looked at this chest X-ray. No doctor has checked it yet.",
            f"It thinks the X-ray most likely shows {words(top)}.",
            f"It is {sureness(top_p)}: {confidence_phrase(top_p)} sure.",
        ]
        other = between[1] if between else facts.ranking[1][0] if top_p < 0.7 and len(facts.ranking) > 1 else None
        if other:
            sentences.append(f"It could also be {words(other)}.")
        where = plain_location(facts.location)
        if where:
            sentences.append(f"It looked most at {where}.")
        return " ".join(sentences + [PLAIN_DISCLAIMER])

    found = PLAIN_CLASSES.get(topic_key(final))
    sentences = [
        "A doctor checked this chest X-ray again and changed the answer."
        if amended
        else "A doctor has checked this chest X-ray.",
        f"The doctor's answer is {words(final)}.",
        found[1] if found else "Your doctor can tell you what it means.",
    ]
    if facts is not None:
        top, top_p = facts.ranking[0]
        if top == final and between is None:
            sentences.append(
                f"A computer program gave the same answer. It was {sureness(top_p)}: {confidence_phrase(top_p)} sure."
            )
            where = plain_location(facts.location)
            if where:
                sentences.append(f"It looked most at {where}.")
        elif final in (between or ()):
            sentences.append(
                "A computer program was not sure about this X-ray. The doctor's answer is the one that counts."
            )
        else:
            sentences.append("A computer program gave a different answer. The doctor's answer is the one that counts.")
    return " ".join(sentences + [PLAIN_DISCLAIMER])


# --- the chat's plain mode ----------------------------------------------------------------------

_LABEL = re.compile(r"(?:label: |labeled it )(.+?)\.$")
PLAIN_REFUSALS = {
    "treatment": "I cannot give advice on medicine, doses or care. Your doctor decides that with you.",
    "prognosis": "I cannot say what will happen next with an illness. Please ask your doctor.",
    "other_patients": "I only know this one X-ray. I cannot talk about other people or other X-rays.",
    "identity": "I do not know or share who anyone is.",
}
PLAIN_REFUSAL = "I cannot answer that here. I can tell you what the program saw and how sure it is."


def _found_share(value: float) -> str:
    if value >= 0.9:
        return "almost all"
    if value >= 0.75:
        return "most"
    if value >= 0.5:
        return "more than half"
    return "fewer than half"


def plain_answer(intent: str, named: str | None, facts: Facts) -> str:
    """The chat's answer in plain words: short sentences, no jargon, only the rounded confidence
    as a number, and the disclaimer. `named` is the class the question is about (or the thread's)."""
    ranking = facts.ranking
    top, top_p = ranking[0]
    topic = named or top
    sure = f"It is {sureness(top_p)}: {confidence_phrase(top_p)} sure."
    where = plain_location(facts.location)
    if intent in REFUSALS:
        sentences = [PLAIN_REFUSALS.get(intent, PLAIN_REFUSAL)]
    elif intent == "confidence":
        sentences = [f"The program thinks this X-ray most likely shows {plain_name(top)}.", sure]
        if top_p < 0.7 and len(ranking) > 1:
            sentences.append(f"It could also be {plain_name(ranking[1][0])}.")
        sentences.append("This is how sure the program is. It is not a promise about your health.")
    elif intent == "location":
        if where:
            sentences = [
                f"The program looked most at {where}.",
                "The colours show where it looked, not where an illness is.",
            ]
        else:
            sentences = ["The picture of where the program looked is not ready yet."]
    elif intent == "performance":
        metrics = facts.gold_by_class.get(topic) or (facts.gold_metrics if topic == top else {})
        if "sensitivity" in metrics:
            sentences = [
                "The program was tested on X-rays that doctors had checked.",
                f"It found {_found_share(metrics['sensitivity'])} of the X-rays that showed {plain_name(topic)}.",
                "It can still be wrong, so a doctor checks.",
            ]
        else:
            sentences = [f"The program has not yet been tested on checked X-rays for {plain_name(topic)}."]
    elif intent == "definition":
        sentences = [f"This means {plain_name(topic)}.", plain_meaning(topic)]
    elif intent == "doctor_label":
        labels = [m.group(1) for line in facts.doctor_labels if (m := _LABEL.search(line))]
        if labels:
            sentences = ["A doctor has checked this X-ray.", f"The doctor's answer was {plain_name(labels[-1])}."]
        else:
            sentences = ["No doctor has checked this X-ray yet. A doctor will."]
    elif intent == "next_steps":
        sentences = [
            "Your doctor will look at you and listen to your chest.",
            "They may compare this X-ray with older ones, or ask for a test.",
            "Your doctor decides what happens next.",
        ]
    elif intent == "clinical":
        if facts.clinical:
            sentences = ["Your doctor has your test results. They can tell you what they mean."]
        else:
            sentences = ["There are no test results stored with this X-ray."]
    elif intent == "help":
        sentences = ["You can ask why the program gave its answer, how sure it is, and what the words mean."]
    else:  # why, plain
        sentences = [
            f"The program thinks this X-ray most likely shows {plain_name(top)}.",
            "It learned from many X-rays that doctors had checked.",
        ]
        if where:
            sentences.append(f"It looked most at {where}.")
        sentences.append(sure)
    return " ".join(sentences + [PLAIN_DISCLAIMER])
