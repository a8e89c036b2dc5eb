"""Findings a chest film can show beyond the model's classes: how a question names them.

A question about one of these gets "this model does not assess X" and the classes it does assess,
unless the deployment has since added the finding as a class (a hospital may add pneumothorax):
then the model assesses it and the answer gives its probability."""

from __future__ import annotations

import re

from assistant.facts import topic_key

# finding (as an answer names it) -> the words a question may use for it
FINDINGS: dict[str, str] = {
    "pleural effusion": r"(pleural )?effusions?|fluid (around|round|outside|next to|by) (the |a )?lungs?|"
    r"fluid in the (pleura|chest cavity)|blunt(ed|ing) (of the )?(costophrenic )?angles?",
    "pneumothorax": r"pneumothora(x|ces)|collapsed lungs?|lung collapse|air (around|outside) the lung",
    "nodules and masses": r"nodules?|mass(es)?|tumou?rs?|cancers?|malignan\w*|growths?|spots? on the lungs?",
    "fractures": r"fractures?|fractured|broken (ribs?|bones?|clavicle|collarbone)|rib (injur\w*|break)|"
    r"bones?|ribs?|clavicles?|spine|vertebra\w*",
    "tubes and lines": r"tubes?|lines? (tip|position|placement)|"
    r"(central|picc|arterial|venous|umbilical) (venous )?lines?|tip of the (\w+ ){0,2}lines?|catheters?|picc|"
    r"ng tube|et tube|endotracheal|nasogastric|drains?|"
    r"pacemakers?|pacing (wires?|leads?)|sternal wires?|implanted devices?|hardware",
    "cardiomegaly": r"cardiomegaly|(enlarged|big|large|enlargement of the) heart|"
    r"heart (size|(is |looks? )?(too )?(big|large|enlarged))|cardiothoracic ratio|"
    r"cardiac (size|silhouette|enlargement)",
    "atelectasis": r"atelectasis|atelectatic",
    "hyperinflation": r"hyperinfla\w*|over-?inflat\w*",
    "foreign bodies": r"foreign (body|bodies|objects?)|swallowed (a |an )?\w+|"
    r"inhaled (a |an )?(object|toy|coin|peanut)",
    "hiatus hernia": r"hernias?",
    "free air under the diaphragm": r"free air|pneumoperitoneum|air under the diaphragm",
    "enlarged lymph nodes": r"lymph ?nodes?|lymphadenopathy|hil(um|ar) (enlargement|nodes?)",
    "pulmonary oedema": r"(pulmonary )?o?edema|fluid in the lungs|heart failure",
}
_PATTERNS = {name: re.compile(rf"\b({words})\b", re.I) for name, words in FINDINGS.items()}
ANY = re.compile(r"\b(" + "|".join(FINDINGS.values()) + r")\b", re.I)


def named_finding(question: str) -> str | None:
    """The finding a question names ("is there a pleural effusion?" -> "pleural effusion"), if any."""
    return next((name for name, pattern in _PATTERNS.items() if pattern.search(question)), None)


def as_class(finding: str, question: str, class_names: list[str], display_names: dict[str, str]) -> str | None:
    """The deployment's class for the finding, when it has one (a class added at run time): a class
    whose identifier or display name is the finding's name or the words the question used for it."""
    match = _PATTERNS[finding].search(question)
    wanted = {_singular(finding)} | ({_singular(match.group(0))} if match else set())
    for name in class_names:
        spelled = {_singular(name), _singular(display_names.get(name, name))}
        if spelled & wanted:
            return name
    return None


def _singular(name: str) -> str:
    """One spelling for comparing names: "Nodules" and "nodule", "pleural_effusion" and "pleural effusion"."""
    key = topic_key(name)
    return key[:-1] if key.endswith("s") and not key.endswith("ss") else key
