"""Composing the answer: facts about a prediction and a question in, a grounded answer out."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from assistant import model_questions
from assistant.facts import DISCLAIMER, PLAIN_DISCLAIMER, Answer, Facts, pct, topic_key
from assistant.intents import REFUSALS, IntentClassifier, Understanding, default_intents, named_topic
from assistant.knowledge import KnowledgeBase
from assistant.language_model import Rephraser
from assistant.plain_language import plain_answer

CAN_ANSWER = (
    "I can explain this prediction: why the model chose its class, how sure it is, where on the image "
    "its evidence came from, how this model version performs on the gold set, what a class means, "
    "and what doctors labeled."
)
REFUSAL = (
    "I can only explain this prediction: what the model saw, how sure it is, how it performs "
    "and what the classes mean. Questions about treatment, medication, prognosis, other "
    "patients or people are for the clinician's judgement."
)
# What each refusal intent says. None contains a number, so a refusal can never state a wrong one.
REFUSALS_TEXT = {
    "prognosis": (
        "medal does not predict outcomes: not survival, mortality, recovery or how the illness will "
        "progress. The class probabilities describe this image, not the chance of any outcome for this "
        "patient. Prognosis is for the clinician's judgement, with the history, examination and tests."
    ),
    "treatment": (
        "medal makes no treatment, medication, dosing, admission or discharge decisions; those are for "
        "the clinician's judgement, following local guidelines."
    ),
    "other_patients": (
        "This chat only knows this image and its prediction. It cannot see other patients, earlier or "
        "later studies, or other images; open that study's own page to ask about it. Comparing films "
        "is for the clinician's judgement."
    ),
    "identity": (
        "I do not hold or give out who the patient is or who read the image; identities are outside "
        "this chat. What the readers labeled, as far as you may see it, I can tell you. Anything else "
        "about the patient is for the clinician's judgement and the patient's record."
    ),
    "injection": REFUSAL,
    "out_of_scope": f"That is outside what I can answer. {CAN_ANSWER} Anything else is for the clinician's judgement.",
}
MODES = ("standard", "plain")  # plain: short sentences, no jargon, one rounded number (plain_language.py)
# A question that points back at the thread: "and how good is it at that?", "what about its sensitivity?"
_POINTS_BACK = re.compile(
    r"^\W*(and|also|so|then)\b|\b(what|how) about\b|\b(at|for|on|about|of|with|in) (it|that|this|them|those)"
    r"( one| class| disease| finding)?\W*$|\bthat (class|one|disease|finding|illness|condition)\b",
    re.I,
)
_WHAT_ABOUT = re.compile(r"^\W*(and\s+)?(what|how) about\b", re.I)
# intents whose answer depends on which class is meant
_ABOUT_A_CLASS = ("performance", "definition", "next_steps", "confidence")


def _as_class(topic: str | None, class_names: list[str]) -> str | None:
    """The model's own name for a topic the question named, when the model has that class."""
    if topic is None:
        return None
    return next((name for name in class_names if topic_key(name) == topic_key(topic)), topic)


def compose(
    question: str,
    facts: Facts,
    kb: KnowledgeBase,
    intents: IntentClassifier | None = None,
    mode: str = "standard",
    earlier: Sequence[str] = (),
) -> Answer:
    """The template answer: built only from the facts and the knowledge base, always available.

    `earlier`: the thread's earlier questions, oldest first, for follow-ups that name no class.
    `mode`: "plain" answers in short sentences without jargon (or when the question asks for it)."""
    classifier = intents or default_intents()
    understood = classifier.classify(question, kb.aliases)
    intent, named = resolve(understood, question, earlier, kb, classifier)
    if intent == "plain":  # "say that in plain words": the previous question again, in plain words
        mode = "plain"
        intent, named = _previous(earlier, kb, classifier) if earlier else ("why", named)
    if intent in model_questions.INTENTS:
        answer = _model_question(intent, named, question, facts, mode)
    elif mode == "plain":
        answer = _compose_plain(intent, named, facts)
    else:
        answer = _compose(intent, named, question, facts, kb)
    return dataclasses.replace(answer, understood_by=understood.method, topic=named)


def resolve(
    understood: Understanding, question: str, earlier: Sequence[str], kb: KnowledgeBase, intents: IntentClassifier
) -> tuple[str, str | None]:
    """(intent, class) with the thread's context: a follow-up that names no class means the class the
    thread last named; "what about X?" asks the previous question about X. Refusals are never undone."""
    intent, named = understood.intent, understood.named
    if not earlier or (intent in REFUSALS and intent != "out_of_scope"):
        return intent, named
    if _WHAT_ABOUT.search(question) and understood.method != "rules":
        previous, previous_named = _previous(earlier, kb, intents)
        if previous not in REFUSALS and previous not in ("help", "plain"):
            intent, named = previous, named or previous_named
    if named is None and intent in _ABOUT_A_CLASS and _POINTS_BACK.search(question):
        named = next((t for q in reversed(earlier[-6:]) if (t := _topic(q, kb)) is not None), None)
    return intent, named


def _topic(question: str, kb: KnowledgeBase) -> str | None:
    topic = named_topic(question, kb.aliases)
    return None if topic == "limitations" else topic


def _previous(earlier: Sequence[str], kb: KnowledgeBase, intents: IntentClassifier) -> tuple[str, str | None]:
    """What the last earlier question asked, resolved against the questions before it."""
    for index in range(len(earlier) - 1, max(-1, len(earlier) - 7), -1):
        understood = intents.classify(earlier[index], kb.aliases)
        if understood.intent != "plain":
            return resolve(understood, earlier[index], earlier[max(0, index - 6) : index], kb, intents)
    return "why", None


def _model_question(intent: str, named: str | None, question: str, facts: Facts, mode: str) -> Answer:
    """Findings it does not assess, why not another class, its errors, its training data, what a result means."""
    classes = list(facts.probabilities)
    named = _as_class(named, classes) if named is not None else _class_in(question, facts)
    text, used = model_questions.answer(intent, named, question, facts, plain=mode == "plain")
    disclaimer = PLAIN_DISCLAIMER if mode == "plain" else DISCLAIMER
    return Answer(f"{text}{' ' if mode == 'plain' else chr(10)}{disclaimer}", used, intent, "template", mode=mode)


def _class_in(question: str, facts: Facts) -> str | None:
    """A class of this model the question names by identifier or display name (one added at run time
    has no knowledge-base entry, so named_topic does not know it)."""
    asked = f" {topic_key(question)} "
    found = [
        (len(spelled), name)
        for name in facts.probabilities
        for spelled in {topic_key(name), topic_key(facts.name(name))}
        if re.search(rf"\b{re.escape(spelled)}\b", asked)
    ]
    return max(found)[1] if found else None


def _compose_plain(intent: str, named: str | None, facts: Facts) -> Answer:
    text = plain_answer(intent, named, facts)
    used = [line for line in facts.lines() if line.startswith("In plain words:")]
    return Answer(text, used, intent, "refusal" if intent in REFUSALS else "template", mode="plain")


def _compose(intent: str, named: str | None, question: str, facts: Facts, kb: KnowledgeBase) -> Answer:
    named = _as_class(named, list(facts.probabilities))
    if intent in REFUSALS:
        text, used = REFUSALS_TEXT[intent], []
        if intent == "treatment":
            guidance = kb.search("decisions on treatment admission or discharge next steps", "limitations")
            if guidance:
                text += " " + guidance[0].text
                used = [guidance[0].cited()]
        return Answer(f"{text}\n{DISCLAIMER}", used, intent, "refusal")
    if intent == "help":
        return Answer(
            f'{CAN_ANSWER} Ask, for example, "why?" or "how sure is it?"\n{DISCLAIMER}', [], intent, "template"
        )
    top_class, top_p = facts.ranking[0]
    top = facts.name(top_class)
    probabilities = ", ".join(f"{facts.name(name)} {pct(p)}" for name, p in facts.ranking)
    used = facts.lines()[:3]
    doubt = ""
    if facts.uncertain_between:
        first, second = (facts.name(name) for name in facts.uncertain_between)
        doubt = f"The call is uncertain between {first} and {second}."
        used = used + [next(line for line in facts.lines() if line.startswith("The call is uncertain"))]
    if intent == "confidence":
        text = (
            f"The model gives {top} {pct(top_p)} ({probabilities}), so it is {facts.certainty_words()}. "
            f"The margin over the next class is {pct(facts.margin)}; a small margin means the image "
            f"is close to the boundary between classes. These are model scores, not the chance that "
            f"the diagnosis is right for this patient."
        )
        if doubt:
            text = f"{doubt} {text}"
    elif intent == "location":
        if facts.location:
            text = f"The heat map shows where the evidence for {top} came from. {facts.location}"
            used = used + [f"Heat map: {facts.location}"]
        else:
            text = "The heat map for this prediction has not been computed yet; open the prediction page to see it."
        caveat = kb.search("heat map shows evidence not disease", "limitations")
        if caveat:
            text += " " + caveat[0].text
            used = used + [caveat[0].cited()]
    elif intent == "performance":
        about = named if named in facts.gold_by_class else top_class
        metrics = facts.gold_by_class.get(about) or (facts.gold_metrics if about == top_class else {})
        if metrics:
            parts = ", ".join(f"{name} {pct(value)}" for name, value in metrics.items())
            size = f" of {facts.gold_size} adjudicated images" if facts.gold_size else ""
            text = (
                f"On the frozen gold set{size}, model version {facts.model_version} scored for "
                f"{facts.name(about)}: {parts}."
            )
            used = used + [line for line in facts.lines() if "gold set" in line and f"for {facts.name(about)}:" in line]
        else:
            text = (
                f"Model version {facts.model_version} has no gold-set measurements yet, so I cannot "
                f"say how often it is right for {facts.name(about)}."
            )
        if named in facts.probabilities and named != about:
            text += (
                f" It has no gold-set measurements for {facts.name(named)}; "
                "the figures above are for the predicted class."
            )
        elif named and named not in facts.probabilities:
            caveat = kb.search(question, named)
            if caveat:
                text += " " + caveat[0].text
                used = used + [caveat[0].cited()]
    elif intent == "next_steps":
        topic = named or top_class
        passage = kb.next_steps.get(topic_key(topic)) or kb.next_steps.get("pneumonia")
        if passage is None:
            text = "The knowledge base holds no next-step guidance for this class yet."
        else:
            text = f"For {facts.name(topic)}: {passage.text} (Source: {passage.source})"
            used = used + [passage.cited()]
        text += " medal gives no treatment, dosing or admission advice; the clinician decides."
    elif intent == "clinical":
        if facts.clinical:
            asked = [line for line in facts.clinical if _asks_for(question, line)] or facts.clinical
            text = (
                "The clinical record for this image holds: " + "; ".join(asked) + ". These values come "
                "from the record, not from the model, which sees only the image."
            )
            used = used + [f"Clinical record: {line}" for line in asked]
        else:
            text = "No clinical values (such as CRP or temperature) are recorded for this image."
    elif intent == "doctor_label":
        text = " ".join(facts.doctor_labels) if facts.doctor_labels else "No doctor has labeled this image yet."
        used = used + facts.doctor_labels
    elif intent == "definition":
        topic = named or top_class
        passages = kb.search(question, topic, k=1)
        if not passages and topic in facts.probabilities:
            # a class added at run time may have no cited entry yet: say so rather than invent one
            text = (
                f"The knowledge base has no entry for {facts.name(topic)} yet, so I cannot describe it; "
                f"the model gives it {pct(facts.probabilities[topic])} for this image."
            )
            return Answer(f"{text}\n{DISCLAIMER}", used, intent, "template")
        if not passages:
            return Answer(f"{REFUSALS_TEXT['out_of_scope']}\n{DISCLAIMER}", [], "out_of_scope", "refusal")
        passage = passages[0]
        text = f"{passage.text} (Source: {passage.source})"
        used = [passage.cited()]
        if topic not in facts.probabilities:
            classes = ", ".join(facts.name(name) for name in facts.probabilities)
            text += f" This model does not predict {topic}; its classes are {classes}."
    else:  # why
        sentences = [f"The model predicts {top} with {pct(top_p)} ({probabilities})."]
        if doubt:
            sentences = [f"The model leans to {top} with {pct(top_p)} ({probabilities}). {doubt}"]
        if facts.location:
            sentences.append(facts.location)
            used = used + [f"Heat map: {facts.location}"]
        sentences.append("It learned this pattern from labeled radiographs and sees only this image.")
        background = kb.search(f"what {topic_key(top_class)} looks like on a radiograph", top_class)
        if background:
            sentences.append(f"{background[0].text} (Source: {background[0].source})")
            used = used + [background[0].cited()]
        text = " ".join(sentences)
    return Answer(f"{text}\n{DISCLAIMER}", used, intent, "template")


# question words -> the label a clinical line starts with (webapp.clinical.records.FIELDS)
_CLINICAL_WORDS = {
    r"\bcrp\b|c-reactive": "CRP",
    r"temperature|fever|febrile": "Temperature",
    r"saturation|spo2|\bsats\b|oxygen": "SpO2",
    r"white (blood )?cell|\bwbc\b|leu[ck]ocyte": "WBC",
    r"respiratory rate|breathing rate|breaths": "Respiratory rate",
    r"symptom|how long|days": "Symptom",
}


def _asks_for(question: str, line: str) -> bool:
    return any(line.startswith(label) and re.search(words, question, re.I) for words, label in _CLINICAL_WORDS.items())


class Assistant:
    """The template answer, rewritten by the optional language model once it has loaded."""

    def __init__(
        self,
        kb: KnowledgeBase | None = None,
        rephraser: Rephraser | None = None,
        intents: IntentClassifier | None = None,
    ):
        self.kb = kb or KnowledgeBase()
        self.rephraser = rephraser
        self.intents = intents or default_intents()

    def warm(self, timeout: float = 120.0) -> bool:
        """Load the sentence encoder and embed the example phrasings and the passages now, off the request
        path (a web process calls it in a thread when it starts), so that the first question does not
        wait for them. False when the encoder did not load within `timeout` (or cannot load)."""
        if not self.kb.wait(timeout):
            return False
        self.intents.scores("hello", self.kb.aliases)  # the example phrasings, masked as questions are
        self.kb.search("what pneumonia looks like on a radiograph")  # the passages
        return True

    def answer(self, question: str, facts: Facts, mode: str = "standard", earlier: Sequence[str] = ()) -> Answer:
        answer = compose(question[:2000], facts, self.kb, self.intents, mode, earlier)
        if self.rephraser is not None and answer.mode != "plain":  # plain answers are already short
            if not self.rephraser.ready:
                self.rephraser.start_loading()  # never wait: this answer stays a template
                return answer
            return self.rephraser.rewrite(answer, facts)
        return answer
