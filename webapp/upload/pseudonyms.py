"""Patient pseudonyms: a keyed hash of the patient id, so studies of one patient stay linked
(splits by patient never leak) while the id itself is never stored."""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from flask import current_app

from webapp.files import write_atomic

KEY_FILE = "pseudonym_key"
ENV_KEY = "MEDAL_PSEUDONYM_KEY"


def _key() -> bytes:
    """The installation's secret: MEDAL_PSEUDONYM_KEY, else a file in MEDAL_HOME made once."""
    if os.environ.get(ENV_KEY):
        return os.environ[ENV_KEY].encode()
    return _key_file(Path(current_app.config["MEDAL_HOME"]) / KEY_FILE)


@functools.lru_cache(maxsize=8)
def _key_file(path: Path) -> bytes:
    """Read once per process (an import pseudonymises thousands of ids), made if missing."""
    if not path.exists():
        write_atomic(path, secrets.token_hex(32).encode(), mode=0o600)
    return path.read_bytes().strip()


def pseudonym(patient_id: str) -> str:
    """The same id always gives the same pseudonym under one key, and another under another key."""
    digest = hmac.new(_key(), patient_id.strip().encode(), hashlib.sha256).hexdigest()
    return "p-" + digest[:32]


def keyed_hash(value: str, purpose: str) -> str:
    """An HMAC of `value` under a key derived from the installation's secret for one `purpose`
    (e.g. "study-uid"), so hashes made for one use never match those made for another. Stable
    under one installation key; another key gives other hashes. 64 hex characters."""
    return hmac.new(derived_secret(purpose).encode(), value.strip().encode(), hashlib.sha256).hexdigest()


def derived_secret(purpose: str) -> str:
    """A secret for one purpose (the de-identification salt, study hashes ...), derived from the
    installation key: the key itself never leaves this module."""
    return hmac.new(_key(), b"medal/" + purpose.encode(), hashlib.sha256).hexdigest()
