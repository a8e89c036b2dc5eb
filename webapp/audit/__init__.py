"""The append-only history: the kinds it records (kinds) and its one writer (writer.record)."""

from webapp.audit.kinds import ALIAS_KINDS, MODEL_KINDS, Kind
from webapp.audit.writer import SYSTEM, Actor, record

__all__ = ["ALIAS_KINDS", "MODEL_KINDS", "SYSTEM", "Actor", "Kind", "record"]
