"""The assistant as a user of the platform: one per process, questions answered from the facts, threads in the DB."""

from __future__ import annotations

import logging
import threading
from typing import Literal, overload

from flask import Flask, current_app

from assistant.compose import MODES, Assistant
from assistant.facts import DISCLAIMER, PLAIN_DISCLAIMER, Answer
from assistant.intents import IntentClassifier
from assistant.knowledge import KnowledgeBase
from assistant.language_model import Rephraser
from webapp.assistant.facts import chat_facts
from webapp.errors import Problem
from webapp.extensions import db, limiter, signed_in_user
from webapp.models import ChatMessage, ChatThread, Prediction, User
from webapp.services import services

log = logging.getLogger(__name__)
_lock = threading.Lock()


def _rate_limit() -> str:
    return services().settings.security.chat_rate_limit


def _too_many() -> str:
    return (
        f"Too many questions to the assistant: at most {_rate_limit()} for each user "
        "(security.chat_rate_limit). Wait a moment and ask again; this question was not stored."
    )


# the page and the API share one count per user (one scope), whatever address the user asks from
rate_limited = limiter.shared_limit(_rate_limit, scope="chat", key_func=signed_in_user, error_message=_too_many)


def assistant() -> Assistant:
    """One per process; the knowledge base's embeddings and the optional language model load in
    the background, and answers never wait for them."""
    with _lock:
        found = current_app.extensions.get("medal_assistant")
        if found is None:
            settings = services().settings.assistant
            cfg = settings.language_model
            rephraser = Rephraser(cfg.package, cfg.max_new_tokens) if cfg.enabled else None
            # the encoder loads once per process: a question asked before it has loaded waits at most
            # first_answer_wait_s, then keyword rules read it (see IntentClassifier)
            found = Assistant(
                KnowledgeBase(encoder=settings.embeddings),
                rephraser,
                IntentClassifier(settings.embeddings, wait=settings.first_answer_wait_s),
            )
            found.kb.start_loading()
            if rephraser is not None:
                rephraser.start_loading()
            current_app.extensions["medal_assistant"] = found
        return found


def warm_up(app: Flask) -> threading.Thread:
    """Make the process's assistant ready in a background thread: the sentence encoder (about 6 s on a
    CPU) and the embedded phrasings, so that the first question is answered in well under 2 s. `medal
    web` calls it in each web process as it starts; tests do not, so create_app stays fast."""

    def run() -> None:
        with app.app_context():
            if not assistant().warm():
                log.warning("the assistant's sentence encoder did not load: first answers use keywords")

    thread = threading.Thread(target=run, name="assistant-warm-up", daemon=True)
    thread.start()
    return thread


@overload
def thread_for(prediction: Prediction, user: User, create: Literal[True]) -> ChatThread: ...
@overload
def thread_for(prediction: Prediction, user: User, create: bool = False) -> ChatThread | None: ...
def thread_for(prediction: Prediction, user: User, create: bool = False) -> ChatThread | None:
    thread = db.session.execute(
        db.select(ChatThread).filter_by(prediction_id=prediction.id, user_id=user.id)
    ).scalar_one_or_none()
    if thread is None and create:
        thread = ChatThread(prediction_id=prediction.id, user_id=user.id)
        db.session.add(thread)
        db.session.flush()
    return thread


def ask(prediction: Prediction, user: User, message: str, mode: str | None = None) -> tuple[ChatThread, Answer]:
    """Answer a question in the user's thread on this prediction; earlier questions of the thread
    settle follow-ups that name no class. mode: "standard" (default) or "plain"."""
    message = (message or "").strip()
    mode = mode or "standard"
    if not message:
        raise Problem("Write a question first.")
    if len(message) > 2000:
        raise Problem("Keep questions under 2000 characters.")
    if mode not in MODES:
        raise Problem(f'"mode" must be one of {", ".join(MODES)}.')
    thread = thread_for(prediction, user)
    earlier = [m.text for m in thread.messages if m.role == "user"][-6:] if thread is not None else []
    answer = assistant().answer(message, chat_facts(prediction, user), mode, earlier)
    thread = thread or thread_for(prediction, user, create=True)
    db.session.add(ChatMessage(thread_id=thread.id, role="user", text=message))
    db.session.add(
        ChatMessage(
            thread_id=thread.id, role="assistant", text=answer.text, facts=answer.facts_used, source=answer.source
        )
    )
    db.session.commit()
    return thread, answer


def answer_to_dict(thread: ChatThread, answer: Answer) -> dict:
    return {
        "thread_id": thread.id,
        "answer": answer.text,
        "facts": answer.facts_used,
        "intent": answer.intent,
        "source": answer.source,
        "understood_by": answer.understood_by,  # keywords: the sentence encoder is unavailable (degraded)
        "mode": answer.mode,
        "topic": answer.topic,  # the class the answer is about (named, or taken from the thread)
        "reminder": PLAIN_DISCLAIMER if answer.mode == "plain" else DISCLAIMER,
    }


def history(prediction: Prediction, user: User) -> list[dict]:
    thread = thread_for(prediction, user)
    if thread is None:
        return []
    return [{"role": m.role, "text": m.text, "facts": m.facts or [], "source": m.source} for m in thread.messages]
