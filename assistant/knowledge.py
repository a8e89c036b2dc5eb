"""The knowledge base: short cited passages on each class (knowledge/*.md), retrieved by sentence embeddings."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant import embeddings
from assistant.facts import topic_key

KNOWLEDGE_DIR = Path(__file__).resolve().parent / "knowledge"


@dataclass(frozen=True)
class Passage:
    topic: str
    text: str
    source: str

    def cited(self) -> str:
        """The passage as a fact an answer used."""
        return f"Knowledge base ({self.topic}): {self.text} Source: {self.source}"


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
