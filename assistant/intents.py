"""What a chat question asks: rules for the unambiguous cases, sentence embeddings for the rest.

Safety refusals come first and are biased towards: a question about prognosis, treatment or
disposition, other patients or identities is refused even when it is only close to an answerable
one. When the sentence encoder cannot load, keyword rules classify alone and the result says so
(`method == "keywords"`), which the chat shows and the log records. The example phrasings the
encoder compares a question with are data: phrasings/intents.yaml."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from assistant import embeddings, findings

PHRASINGS = Path(__file__).resolve().parent / "phrasings" / "intents.yaml"


def _load_examples(path: Path = PHRASINGS) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, list[str]]]:
    """(answers, refusals, example phrasings per intent) from the phrasings file, in its order."""
    data = yaml.safe_load(path.read_text())
    return tuple(data["answers"]), tuple(data["refusals"]), {**data["answers"], **data["refusals"]}


ANSWERS, REFUSALS, EXAMPLES = _load_examples()
INTENTS = ANSWERS + REFUSALS

_I = re.I
# Rules for what must never be answered. Precise words only: the encoder handles paraphrases.
_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "injection",
        re.compile(
            r"\bignore (all |any |the |your |my )?(previous|prior|above|earlier|instructions|rules|guidelines)|"
            r"disregard|from now on|system prompt|you are now|"
            r"pretend|\bact as\b|jailbreak|developer mode|new instructions|reveal your|"
            r"forget (your|all|the|everything|what)",
            _I,
        ),
    ),
    (
        "prognosis",
        re.compile(
            r"\b(prognos\w*|surviv\w*|die|dies|dying|died|death|deaths|mortality|fatal\w*|deadly|"
            r"life expectancy|life[- ]threatening|how long (will|does|do|would|has|have) (he|she|they|it|the patient|"
            r"this patient|the child|this child) (live|have|last|take)|recover\w*|pull through|ends? up|"
            r"get (better|worse)|outcome\w*|deteriorat\w*|complications?)\b",
            _I,
        ),
    ),
    (
        "treatment",
        re.compile(
            r"\b(treat|treats|treated|treating|treatment\w*|therap\w*|antibiotic\w*|antiviral\w*|antifung\w*|"
            r"steroid\w*|corticosteroid\w*|prednis\w*|dexameth\w*|amoxi\w*|azithro\w*|ceftri\w*|penicillin|"
            r"oseltamivir|tamiflu|remdesivir|paracetamol|ibuprofen|medication\w*|medicine\w*|drugs?|doses?|"
            r"dosing|dosage|mg|milligrams?|ml|millilit\w*|tablets?|pills?|capsules?|syrups?|puffs?|prescri\w*|cure|surgery|surgical|operate|intubat\w*|ventilat\w*|"
            r"oxygen(?! (saturation|sats?|levels?))|icu|intensive care|admit\w*|admission|hospitali[sz]\w*|discharg\w*|"
            r"(send|sent|go|going|went|return) (\w+ ){0,3}home|outpatient|inpatient|manage(d|ment)?|"
            r"what should (i|we) do|(go|going|return|back) to (school|work|nursery)|"
            r"isolat\w*|quarantin\w*|vaccin\w*|refer|referral)\b",
            _I,
        ),
    ),
    (
        "other_patients",
        re.compile(
            r"\b(other|another|previous|prior|last|earlier|next|different|similar|yesterday'?s?|"
            r"all the|more) (patients?|images?|x-?rays?|films?|scans?|stud(y|ies)|cases?|radiographs?|child|"
            r"children|person|people)\b|\bbed \d+|\bcompar\w*\b.*\b(prior|previous|last|earlier|old|yesterday|"
            r"month|week|before)\b|\b(last|previous) (week|month|year|time|visit)\b",
            _I,
        ),
    ),
    (
        "identity",
        re.compile(
            r"patient'?s (name|address|phone|number|date of birth|birthday|id|identity)|name of the patient|"
            r"who is (the|this) (patient|child|person)|\baddress\b|phone|date of birth|social security|"
            r"\bidentity\b|who took|which (doctor|radiologist|reader)|who (labell?ed|read|reported)|"
            r"medical record|\bmrn\b|where does (he|she|the patient|this patient) live",
            _I,
        ),
    ),
    (
        "out_of_scope",
        re.compile(
            r"\b(insurance|cost|costs|price|bill|translat\w*|lawyer|sue|weather|stocks?|recipe|joke|poem|haiku|politic\w*|election|football|bitcoin)\b",
            _I,
        ),
    ),
]
_FILM = r"(image|film|x-?ray|study|radiograph|picture|scan|case)"
# Answerable questions with a word that settles them, tried after the refusal rules.
_ANSWER_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("finding", findings.ANY),  # "is there an effusion?": the model may not assess it, whatever else is asked
    (
        "training_data",
        re.compile(
            rf"\b(train(ed|ing)?|learn(ed|t|ing)?|taught|teach(ing)?)\b.{{0,40}}\b(this|the same) {_FILM}|"
            rf"\b(this|the) {_FILM}\b.{{0,40}}\b(train\w*|learn\w*|taught|teach\w*)|"
            rf"\bseen (this|the same) {_FILM}|\btraining (set|data|images?|examples?|manifest)\b",
            _I,
        ),
    ),
    (
        "meaning",
        re.compile(
            r"\bwhat (does|do|did|will|would|could|might|can) (this|that|it|these|those|the (\w+ )?(results?|x-?rays?|"
            r"findings?|scan|film|report|answer|picture|image))( (result|x-?ray|finding|answer))? (mean|tell)\b|"
            r"\bmeans? for (my|our|him|her|me|us|them|the (child|patient|family))\b|"
            r"\bwhat should (i|we) make of\b|\bwho (should|can|do|could) (i|we) (ask|talk to|speak to)\b",
            _I,
        ),
    ),
    (
        "definition",
        re.compile(r"\bwhat (does|do) (this|that|the) (class|term|word|diagnosis|label|category) mean\b", _I),
    ),
    (
        "errors",
        re.compile(
            r"^(?!.*\bhow (often|many times|frequently)\b).*(\b(gets?|got|getting) (\w+ ){0,2}wrong\b|\bwrong most\b|"
            r"\b(what|which|kinds? of|types? of|sorts? of|common|typical|usual|main|biggest) (\w+ )?mistakes?\b|"
            r"\bmisclassif\w*|"
            r"\b(common|frequent|typical|usual|main|biggest) (errors?|confusions?)\b|\bconfusion matrix\b|"
            r"\b(it|model|classifier) (\w+ )?(confus|mix)(e|es|ed|ing)\b|"
            r"\bconfus(e|es|ed|ing) (\w+ ){0,3}(with|and|for)\b|"
            r"\bmix(es|ed)? (\w+ ){0,3}up\b|\bmiss(es)? most\b)",
            _I,
        ),
    ),
    (
        "why_not",
        re.compile(
            r"\bwhy (not|no)\b|\bwhy (isn'?t|is not|wasn'?t|was not|didn'?t|did not|doesn'?t|does not|couldn'?t|"
            r"could not|won'?t|hasn'?t)\b|\brather than\b|\binstead of\b|\b(evidence|speaks?|argues?) against\b|"
            r"\bwhy (is|was) (it|this) (\w+ ){1,2}(and|but) not\b|"
            r"\b(choose|chose|pick|picked|prefer|preferred) \w+ over\b",
            _I,
        ),
    ),
    (
        "plain",
        re.compile(
            r"\b(plain (words|language|english)|simpl(er|e terms|e words|y)|layman'?s?|lay terms|jargon|"
            r"everyday (words|language)|easier to understand)\b",
            _I,
        ),
    ),
    (
        "clinical",
        re.compile(
            r"\b(crp|c-reactive|white (blood )?cell|wbc|leu[ck]ocytes?|temperature|fever|febrile|"
            r"(oxygen )?saturation|spo2|sats|heart rate|pulse|respiratory rate|blood (tests?|results?|values?)|"
            r"lab(oratory)? (tests?|results?|values?)|vital signs?|vitals|observations|clinical (record|fields|data|"
            r"values|details))\b",
            _I,
        ),
    ),
    (
        "next_steps",
        re.compile(
            r"\b(next steps?|follow[- ]?up|how (can|could|do|would|should) (we|i|you|one|it) (confirm|be confirmed|"
            r"check)|(would|will|to) confirm|rule (this|it) out|further (checks?|work-?up)|what else should)\b",
            _I,
        ),
    ),
    (
        "location",
        re.compile(r"\b(where|heat ?map|grad-?cam|which (lung|side|lobe|zone)|left or right|upper or lower)\b", _I),
    ),
    (
        "performance",
        re.compile(
            r"\b(sensitivity|specificity|auc|accuracy|accurate|false (negative|positive)s?|"
            r"error rate|gold set|perform(s|ance|ed)?|validat\w*)\b",
            _I,
        ),
    ),
    ("confidence", re.compile(r"\b(how (sure|certain|confident)|probabilit\w*|confidence|percentage)\b", _I)),
]
# The degraded mode's rules for answerable questions, in the order they are tried.
_KEYWORDS: list[tuple[str, re.Pattern[str]]] = [
    ("help", re.compile(r"^\W*(hi|hello|hey|help|thanks?|thank you|good (morning|afternoon|evening))\b\W*$", _I)),
    ("plain", re.compile(r"\b(plain|simpl\w*|jargon|patient understands|easier)\b", _I)),
    (
        "next_steps",
        re.compile(r"\b(next steps?|how (to|can|could|do|would) .*confirm|rule (it|this) out|follow[- ]?up)\b", _I),
    ),
    ("help", re.compile(r"\b(what can you|what (kind of )?questions|how do i use|what are you able)\b", _I)),
    (
        "location",
        re.compile(
            r"\b(where|which (lung|side|zone|part|lobe|area)|location|heat ?map|grad-?cam|"
            r"look(ed|ing)? at|focus\w*|region|left or right|upper or lower)\b",
            _I,
        ),
    ),
    (
        "performance",
        re.compile(
            r"\b(how good|how accurate|accuracy|performance|perform|reliab\w*|rely|"
            r"sensitivity|specificity|auc|gold set|track record|how often|error rate|"
            r"false (negative|positive)s?|mistakes?|validated|trust (this|the) model)\b",
            _I,
        ),
    ),
    (
        "confidence",
        re.compile(
            r"\b(how sure|confiden\w*|certain\w*|probabilit\w*|likely|chance|odds|percent\w*|"
            r"uncertain\w*|borderline|close call|score)",
            _I,
        ),
    ),
    (
        "doctor_label",
        re.compile(
            r"\b(label(ed|led)?|doctor (said|say|think)|confirm(ed)?|corrected|reviewed|"
            r"radiologist|read(s|ing)?|adjudicat\w*|agree)\b",
            _I,
        ),
    ),
    (
        "definition",
        re.compile(
            r"\b(what is|what's|what are|define|definition|mean(s|ing)?|signs? of|look like|"
            r"tell me (more )?about|describe|difference)\b",
            _I,
        ),
    ),
    ("why", re.compile(r"\b(why|reason\w*|because|how did|explain|basis|justify)\b", _I)),
]
_DEFINITION = re.compile(r"\W*(what is|what's|what are|define|describe|tell me (more )?about|explain what)\b", _I)
_ABOUT_A_PERSON = re.compile(
    r"\b(patients?|child|children|kid|baby|person|people|he|she|him|her|his|hers|they|them|their|illness|course|"
    r"before|today|tomorrow|yesterday)\b",
    _I,
)
_HELP_WORDS = re.compile(r"^\W*(hi|hello|hey|thanks?|thank you)\W*$", _I)


@dataclass(frozen=True)
class Understanding:
    intent: str
    named: str | None  # the knowledge-base topic the question names, if any
    method: str  # rules | embeddings | keywords (keywords: the encoder is not available)
    score: float | None = None  # cosine similarity of the chosen intent (embeddings only)


def named_topic(question: str, class_aliases: dict[str, list[str]]) -> str | None:
    """The topic a question names; the longest alias wins ("viral pneumonia" over "pneumonia")."""
    lowered = question.lower()
    matches = [
        (len(alias), name)
        for name, aliases in class_aliases.items()
        for alias in aliases
        if re.search(rf"\b{re.escape(alias)}\b", lowered)
    ]
    return max(matches)[1] if matches else None


class IntentClassifier:
    """k nearest example phrasings by cosine similarity per intent, with a threshold, after rules.

    `threshold`: below it a question is out of scope. `safety_margin`: a refusal intent within this
    much of the best answerable intent wins. `wait`: how long the first question may wait for the
    encoder to load (it loads once per process); after that, or if it cannot load, keywords."""

    def __init__(
        self,
        package: str = embeddings.DEFAULT_PACKAGE,
        examples: dict[str, list[str]] | None = None,
        k: int = 3,
        threshold: float = 0.3,
        safety_margin: float = 0.04,
        wait: float = 60.0,
    ):
        self.package, self.k, self.threshold, self.safety_margin, self.wait = package, k, threshold, safety_margin, wait
        self.examples = examples or EXAMPLES
        self._labels = [intent for intent, phrasings in self.examples.items() for _ in phrasings]
        self._vectors: np.ndarray | None = None
        self._mask: re.Pattern[str] | None = None  # the class names masked in the example vectors
        self._waited = False

    @property
    def degraded(self) -> bool:
        """True once the encoder has failed to load: only keyword rules classify."""
        return embeddings.error(self.package) is not None

    def _example_vectors(self, mask: re.Pattern[str] | None) -> np.ndarray | None:
        if self._vectors is None or self._mask != mask:
            wait = 0.0 if self._waited else self.wait
            self._waited = True
            if embeddings.encoder(self.package, wait=wait) is None:
                return None
            phrasings = [_masked(text, mask) for phrasings in self.examples.values() for text in phrasings]
            self._vectors, self._mask = embeddings.encode(self.package, phrasings), mask
        return self._vectors

    def scores(self, question: str, class_aliases: dict[str, list[str]] | None = None) -> dict[str, float] | None:
        """Per intent, the mean similarity of its k nearest examples; None without an encoder."""
        mask = _class_mask(class_aliases or {})
        vectors = self._example_vectors(mask)
        if vectors is None:
            return None
        similarity = vectors @ embeddings.encode_one(self.package, _masked(question, mask))
        labels = np.array(self._labels)
        result = {}
        for intent in self.examples:
            nearest = np.sort(similarity[labels == intent])[::-1][: self.k]
            result[intent] = float(nearest.mean())
        return result

    def classify(self, question: str, class_aliases: dict[str, list[str]] | None = None) -> Understanding:
        text = " ".join(question.split())
        named = named_topic(text, class_aliases or {})
        if not text:
            return Understanding("out_of_scope", None, "rules")
        for intent, pattern in _RULES:
            if pattern.search(text):
                return Understanding(intent, named, "rules")
        for intent, pattern in _ANSWER_RULES:
            if pattern.search(text):
                return Understanding(_refine(intent, text, named), named, "rules")
        if named and named != "limitations" and _DEFINITION.match(text):
            return Understanding("definition", named, "rules")  # "what is covid 19?", "define emphysema"
        scores = self.scores(text, class_aliases)
        if scores is None:
            return Understanding(self._keywords(text, named), named, "keywords")
        best = max(scores, key=scores.__getitem__)
        refusal = max((i for i in scores if i in REFUSALS and i != "out_of_scope"), key=scores.__getitem__)
        if best in ANSWERS and scores[refusal] >= max(self.threshold, scores[best] - self.safety_margin):
            best = refusal  # close to a safety refusal: refuse rather than answer
        score = scores[best]
        if score < self.threshold and not _HELP_WORDS.match(text):
            best = "out_of_scope"
        return Understanding(_refine(best, text, named), named, "embeddings", score)

    @staticmethod
    def _keywords(text: str, named: str | None) -> str:
        if _ABOUT_A_PERSON.search(text):
            return "out_of_scope"  # without the encoder, a question about a person is not risked
        for intent, pattern in _KEYWORDS:
            if pattern.search(text):
                return _refine(intent, text, named)
        return "definition" if named else "out_of_scope"


@functools.lru_cache(maxsize=8)
def _mask_for(aliases: tuple[str, ...]) -> re.Pattern[str] | None:
    if not aliases:
        return None
    return re.compile(r"\b(" + "|".join(re.escape(a) for a in sorted(aliases, key=len, reverse=True)) + r")\b", _I)


def _class_mask(class_aliases: dict[str, list[str]]) -> re.Pattern[str] | None:
    """Class names are masked before embedding: "sensitivity for tuberculosis" is a performance
    question, and the disease word would otherwise pull it towards a definition. The
    limitations topic's aliases (reliable, trust) are ordinary words of the questions."""
    aliases = {alias for topic, names in class_aliases.items() if topic != "limitations" for alias in names}
    return _mask_for(tuple(sorted(aliases)))


def _masked(text: str, mask: re.Pattern[str] | None) -> str:
    text = " ".join(text.split()).lower()
    return mask.sub("it", text) if mask is not None else text


def _refine(intent: str, text: str, named: str | None) -> str:
    # "what is viral pneumonia" reads like an explanation to the encoder, but names a class
    if intent == "why" and named and re.match(r"\W*(what|define|describe|tell me)", text, _I):
        return "definition"
    return intent


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
    """(intent, class the question names), as the default classifier (or `intents`) understands it."""
    understood = (intents or default_intents()).classify(question, class_aliases)
    return understood.intent, understood.named
