"""Answers about the model beyond this one call: findings it does not assess, why not another class,
its commonest errors on the gold set, whether it trained on this image, and what a result means
for the patient. Each answer is built from the facts alone, in standard or plain words."""

from __future__ import annotations

import re

from assistant.facts import Facts, confidence_phrase, pct
from assistant.findings import as_class, named_finding
from assistant.plain_language import plain_name, sureness

INTENTS = ("finding", "why_not", "errors", "training_data", "meaning")
_CHILD = re.compile(r"\b(child|children|kid|son|daughter|baby|boy|girl|toddler|infant)\b", re.I)


def answer(intent: str, named: str | None, question: str, facts: Facts, plain: bool) -> tuple[str, list[str]]:
    """(text without the disclaimer, the fact lines it used) for one of INTENTS."""
    if intent == "finding":
        return finding(question, facts, plain)
    if intent == "why_not":
        return why_not(named, facts, plain)
    if intent == "errors":
        return errors(facts, plain)
    if intent == "training_data":
        return training_data(facts, plain)
    return meaning(question, facts, plain)


def _assessed(facts: Facts) -> str:
    return ", ".join(facts.name(name) for name in facts.probabilities)


def _probabilities_line(facts: Facts) -> str:
    return facts.lines()[1]


def finding(question: str, facts: Facts, plain: bool) -> tuple[str, list[str]]:
    """ "Is there a pleural effusion?": not assessed, unless the deployment has the finding as a class."""
    asked = named_finding(question) or "this finding"
    found = (
        as_class(asked, question, list(facts.probabilities), facts.display_names) if asked != "this finding" else None
    )
    used = [_probabilities_line(facts)]
    if found is not None:
        p = facts.probabilities[found]
        if plain:
            return (
                f"The program does check for {plain_name(found)}. "
                f"Its answer for this X-ray is {plain_name(facts.predicted_class)}.",
                used,
            )
        return (
            f"This model assesses {facts.name(found)}: it gives it {pct(p)} for this image "
            f"(top class {facts.name(facts.predicted_class)}, {pct(facts.ranking[0][1])}).",
            used,
        )
    if plain:
        return (
            f"This program does not look for {asked}. It only says which of these the X-ray looks most like: "
            + _or([plain_name(name) for name in facts.probabilities])
            + ". A doctor looks at the whole X-ray, including this.",
            used,
        )
    return (
        f"This model does not assess {asked}. It assesses: {_assessed(facts)}. Its scores and heat map say "
        f"nothing about {asked}, present or absent; the radiologist's reading of the film covers it.",
        used,
    )


def why_not(named: str | None, facts: Facts, plain: bool) -> tuple[str, list[str]]:
    """ "Why not viral pneumonia?": the top call against that class, by probability and, where the
    platform can compute it, by the heat map of evidence for that class."""
    ranking = facts.ranking
    top, p_top = ranking[0]
    other = named if named is not None else (ranking[1][0] if len(ranking) > 1 else None)
    used = [_probabilities_line(facts)]
    if other is None:
        return ("The model has a single class, so there is no other class to compare with.", used)
    if other not in facts.probabilities:
        if plain:
            return (f"This program does not look for {other}. It only looks for the things it was taught.", used)
        return (f"This model does not assess {other}. It assesses: {_assessed(facts)}.", used)
    if other == top:
        if plain:
            return (f"The program does think this is most likely {plain_name(top)}.", used)
        return (f"The model does call this {facts.name(top)}: {pct(p_top)}, its highest score.", used)
    p_other = facts.probabilities[other]
    close = facts.uncertain_between is not None and other in facts.uncertain_between
    if plain:
        sentences = [
            f"The program thinks {plain_name(top)} is more likely than {plain_name(other)}.",
            f"It could still be {plain_name(other)}." if close else f"It thinks {plain_name(other)} is less likely.",
        ]
        return (" ".join(sentences), [line for line in facts.lines() if line.startswith("In plain words:")])
    sentences = [
        f"The model scores {facts.name(top)} {pct(p_top)} against {pct(p_other)} for {facts.name(other)}: "
        f"it finds the image more like the {facts.name(top)} films it learned from."
    ]
    if close:
        sentences.append(
            f"The two are close: the call is uncertain between {facts.name(top)} and {facts.name(other)}, "
            f"so {facts.name(other)} is not ruled out."
        )
        used.append(f"The call is uncertain between {facts.name(top)} and {facts.name(other)}.")
    else:
        sentences.append(
            f"A lower score does not rule {facts.name(other)} out; the model has no rule that excludes a class."
        )
    evidence = facts.evidence_for(other) if facts.evidence_for is not None else None
    if evidence:
        sentences.append(f"The heat map of the evidence for {facts.name(other)}: {evidence}")
        used.append(f"Heat map for {facts.name(other)}: {evidence}")
        if facts.location:
            sentences.append(f"For {facts.name(top)}: {facts.location}")
            used.append(f"Heat map: {facts.location}")
    else:
        sentences.append(
            f"The heat map on the page shows the evidence for {facts.name(top)} only; it does not show evidence "
            f"against {facts.name(other)}."
        )
    return (" ".join(sentences), used)


def errors(facts: Facts, plain: bool) -> tuple[str, list[str]]:
    """ "What does it get wrong most often?": the gold set's confusion counts for this model version."""
    version, size = facts.model_version, facts.gold_errors_size
    if not size:
        if plain:
            return ("The program has not yet been tested on X-rays that doctors had checked.", [])
        return (
            f"Model version {version} has not been measured on the gold set yet, so I cannot say which "
            "mistakes it makes most.",
            [],
        )
    used = [line for line in facts.lines() if "gold studies:" in line]
    if not facts.gold_errors:
        if plain:
            return ("The program was tested on X-rays that doctors had checked, and it made no mistakes there.", used)
        return (f"On the {size} gold studies, model version {version} made no error.", used)
    first, *rest = facts.gold_errors
    if plain:
        return (
            "The program was tested on X-rays that doctors had checked. The mistake it makes most often is "
            f"saying {plain_name(first.called)} when the X-ray showed {plain_name(first.truth)}.",
            [line for line in facts.lines() if line.startswith("In plain words:")],
        )
    text = (
        f"On the {size} gold studies, model version {version}'s most common error is calling "
        f"{facts.name(first.truth)} {facts.name(first.called)} ({first.count} times)."
    )
    if rest:
        text += (
            " Next: "
            + "; ".join(f"{facts.name(e.truth)} called {facts.name(e.called)} ({e.count} times)" for e in rest[:3])
            + "."
        )
    if facts.predicted_class in {e.called for e in facts.gold_errors[:2]}:
        text += f" This image is called {facts.name(facts.predicted_class)}, one of the calls it gets wrong most."
    return (text, used)


def training_data(facts: Facts, plain: bool) -> tuple[str, list[str]]:
    """ "Was this image used for training?": from the training manifests, or "not known" honestly."""
    use, version = facts.training_use, facts.model_version
    if use is None or not (use.checked or use.unknown):
        if plain:
            return ("We do not know if the program learned from this X-ray.", [])
        return (
            f"Whether model version {version} was trained on this image is not known: no training manifest was found.",
            [],
        )
    used = [facts.training_use_line()]
    if version in use.used_by:
        if plain:
            return ("Yes. The program learned from this X-ray, so its answer here is not a fair test of it.", used)
        return (
            f"Yes: model version {version}'s training manifest lists this image, so it trained on it. "
            "Its call here is not an independent test of the model.",
            used,
        )
    if use.used_by:
        ancestors = ", ".join(str(v) for v in use.used_by)
        if plain:
            return ("Yes, in part. An earlier version of the program learned from this X-ray.", used)
        return (
            f"Not directly: model version {version}'s own training data does not hold it, but it was fine-tuned "
            f"from version {ancestors}, which trained on this image, so it has shaped the model's weights.",
            used,
        )
    if use.unknown:
        unknown = ", ".join(str(v) for v in use.unknown)
        if plain:
            return ("We do not know for sure if the program learned from this X-ray.", used)
        read = ", ".join(str(v) for v in use.checked)
        known = f"The training manifests of version {read} do not list it, but " if use.checked else ""
        return (
            f"Not known for certain. {known}version {unknown} has no manifest that identifies images by "
            "content, so whether it trained on this image cannot be said.",
            used,
        )
    if plain:
        return ("No. The program did not learn from this X-ray.", used)
    lineage = ", ".join(str(v) for v in use.checked if v != version)
    ancestry = f" nor of the versions it was fine-tuned from ({lineage})" if lineage else ""
    return (f"No: this image is not in the training data of model version {version}{ancestry}.", used)


def meaning(question: str, facts: Facts, plain: bool) -> tuple[str, list[str]]:
    """ "What does this mean for my child?": what the result says and who to ask, never a prognosis."""
    top, p_top = facts.ranking[0]
    child = bool(_CHILD.search(question))
    if plain:
        used = [line for line in facts.lines() if line.startswith("In plain words:")]
        if facts.uncertain_between:
            first, second = facts.uncertain_between
            result = f"The program is not sure: it could be {plain_name(first)} or {plain_name(second)}."
        else:
            result = (
                f"It thinks the X-ray most likely shows {plain_name(top)}. It is {sureness(p_top)}: "
                f"{confidence_phrase(p_top)} sure."
            )
        who = "your child's doctor" if child else "your doctor"
        whom = "your child" if child else "you"
        return (
            f"A computer program looked at this chest X-ray. {result} This is not a diagnosis on its own. "
            f"{who[0].upper() + who[1:]} also looks at the X-ray, listens to the chest and knows how {whom} "
            f"{'is' if child else 'are'}. Ask {who} what this means for {whom}.",
            used,
        )
    used = facts.lines()[:3]
    if facts.uncertain_between:
        first, second = facts.uncertain_between
        result = f"the model is uncertain between {facts.name(first)} and {facts.name(second)} ({_scores(facts)})"
    else:
        result = f"the model reads the film as most likely {facts.name(top)} ({pct(p_top)})"
    return (
        f"The result: {result}. It is a reading of this image alone, not a diagnosis and not a forecast of how "
        f"the illness will go. The doctor caring for the {'child' if child else 'patient'} puts it together with "
        "the examination, the history and any tests, and is the one to ask what it means for them.",
        used,
    )


def _scores(facts: Facts) -> str:
    return ", ".join(f"{facts.name(name)} {pct(p)}" for name, p in facts.ranking)


def _or(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
