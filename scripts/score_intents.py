"""Intent accuracy on a set of held-out phrasings: per intent, overall, and every miss with how it was read.

    .venv/bin/python scripts/score_intents.py                       # tests/assistant/heldout.yaml
    .venv/bin/python scripts/score_intents.py FILE.yaml [--degraded] [--json OUT.json]

The held-out set is never used to tune the classifier (see its header); docs/assistant.md records the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant import embeddings  # noqa: E402
from assistant.evaluation import phrasings, score  # noqa: E402
from assistant.intents import IntentClassifier  # noqa: E402
from assistant.knowledge import KnowledgeBase  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="*", type=Path, default=[ROOT / "tests" / "assistant" / "heldout.yaml"])
    parser.add_argument("--degraded", action="store_true", help="without the sentence encoder: keyword rules alone")
    parser.add_argument("--json", type=Path, help="write the raw rows (each phrasing, expected and read) here")
    args = parser.parse_args()
    package = "no_such_encoder" if args.degraded else embeddings.DEFAULT_PACKAGE
    classifier = IntentClassifier(package, wait=120)
    aliases = KnowledgeBase().aliases
    rows = {}
    for path in args.files:
        result = score(classifier, phrasings(path), aliases)
        print(f"{path.name}{' (degraded)' if args.degraded else ''}:")
        print("\n".join(f"  {line}" for line in result.lines()))
        rows[path.name] = {
            "right": dict(result.right),
            "total": dict(result.total),
            "misses": [asdict(m) for m in result.misses],
        }
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
