"""The chat assistant: facts about one prediction and a question in, a grounded answer in plain words out.

facts.py holds the values (Facts, Answer) and the disclaimer; intents.py reads the question (its example
phrasings are data, in phrasings/); compose.py answers it from the facts and the knowledge base
(knowledge.py, knowledge/), in plain words when asked (plain_language.py), rewritten by the optional
language model (language_model.py). It imports neither learning/ nor Flask nor the database:
webapp/assistant/ gathers the facts and keeps the threads."""
