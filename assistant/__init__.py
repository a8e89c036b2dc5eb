"""The chat assistant: facts about one prediction and a question in, a grounded answer in plain words out.

facts (Facts, Answer, the disclaimer) <- intents (phrasings/) <- plain_language, knowledge (knowledge/),
language_model <- compose (Assistant). It imports neither the imaging code (learning) nor Flask or the
database: webapp gathers the facts and keeps the threads."""
