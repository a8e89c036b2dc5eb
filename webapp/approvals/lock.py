"""The alias-change lease lock: one row in the settings table whose primary key makes taking it a
compare-and-set across processes, so approvals, rollbacks and recovery never interleave."""

from __future__ import annotations

import logging
import os
import uuid
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from webapp.approvals import DecisionError
from webapp.extensions import db, rows_changed
from webapp.models import Setting, utcnow
from webapp.processes import hostname, same_process_alive, started_at

log = logging.getLogger(__name__)
LOCK_KEY = "lock:alias-change"
LOCK_LEASE = timedelta(seconds=60)  # longer than any alias change takes; a crashed holder's lock expires


@contextmanager
def alias_lock(stale_after: timedelta = LOCK_LEASE):
    lease = take(stale_after)
    if lease is None:
        # no "try again": repeating a rollback or an approval blind could undo the change in progress
        raise DecisionError(
            "Another model change is in progress: look at the champion it leaves before changing anything.", 409
        )
    try:
        yield
    except Exception:
        # an error, not a crash: give the lock back; the intent (if written) stays for reconcile()
        db.session.rollback()
        release(lease)
        raise
    release(lease)


def take(stale_after: timedelta = LOCK_LEASE) -> str | None:
    """The lease id when the lock is now ours, None when someone else holds it."""
    lease = uuid.uuid4().hex
    # pid plus start time: a pid reused by another process after a crash does not keep the lock
    holder = {"pid": os.getpid(), "started": started_at(), "host": hostname(), "lease": lease}
    for attempt in range(2):
        try:
            # a plain INSERT: the primary key makes it a compare-and-set across processes
            db.session.execute(insert(Setting).values(key=LOCK_KEY, value=holder, updated_at=utcnow()))
            db.session.commit()
            return lease
        except IntegrityError:
            db.session.rollback()
            if attempt or not _break_stale(stale_after):
                return None
    return None


def _break_stale(stale_after: timedelta) -> bool:
    held = db.session.execute(db.select(Setting.value, Setting.updated_at).where(Setting.key == LOCK_KEY)).one_or_none()
    if held is None:
        return True
    value = held.value or {}
    holder_gone = value.get("host") == hostname() and not same_process_alive(value.get("pid"), value.get("started"))
    if not holder_gone and held.updated_at > utcnow() - stale_after:
        return False
    # conditional: if two processes break the same stale lock, only one succeeds
    broken = rows_changed(delete(Setting).where(Setting.key == LOCK_KEY, Setting.updated_at == held.updated_at))
    db.session.commit()
    if broken:
        log.warning("took over the alias-change lock from %s", value)
    return bool(broken)


def release(lease: str) -> bool:
    """Give the lock back, but only if `lease` still holds it: a holder whose lease was broken
    must not delete the new owner's lock. Returns whether it deleted the lock."""
    held = db.session.execute(db.select(Setting.value, Setting.updated_at).where(Setting.key == LOCK_KEY)).one_or_none()
    if held is None or (held.value or {}).get("lease") != lease:
        return False
    deleted = rows_changed(delete(Setting).where(Setting.key == LOCK_KEY, Setting.updated_at == held.updated_at))
    db.session.commit()
    return bool(deleted)
