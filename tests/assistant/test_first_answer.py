"""A question asked while the sentence encoder still loads does not wait for it: after the
classifier's `wait` it is read by keyword rules, and the encoder takes over once loaded. Run in a
fresh Python process, where the encoder has not loaded yet (this test process may have loaded it)."""

import json
import subprocess
import sys

SCRIPT = """
import json
from assistant import embeddings
from assistant.intents import IntentClassifier

classifier = IntentClassifier(embeddings.DEFAULT_PACKAGE, wait=0.0)
early = classifier.classify("Which part of the lung did it focus on?")
loaded_then = embeddings.encoder(embeddings.DEFAULT_PACKAGE) is not None
embeddings.encoder(embeddings.DEFAULT_PACKAGE, wait=300)  # the background load finishes
later = classifier.classify("Which part of the lung did it focus on?")
print(json.dumps({"early": [early.intent, early.method], "loaded_then": loaded_then,
                  "later": [later.intent, later.method]}))
"""


def test_a_question_asked_while_the_encoder_loads_is_read_by_keywords_then_by_the_encoder():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, check=True)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["loaded_then"] is False  # the first question came before the encoder
    assert found["early"] == ["location", "keywords"]
    assert found["later"] == ["location", "embeddings"]
