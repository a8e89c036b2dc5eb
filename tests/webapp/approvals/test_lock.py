"""The alias-change lease lock: compare-and-set, lease expiry, and release only by its holder."""

from datetime import timedelta

from webapp.approvals import lock
from webapp.extensions import db
from webapp.models import Setting, utcnow


def _held_elsewhere_since(minutes: int) -> None:
    """Make the current holder a process on another host that last renewed `minutes` ago."""
    held = db.session.get(Setting, lock.LOCK_KEY)
    held.value = dict(held.value, host="another-host")
    held.updated_at = utcnow() - timedelta(minutes=minutes)
    db.session.commit()


def test_one_holder_at_a_time_and_release_frees_it(app):
    first = lock.take()
    assert first is not None
    assert lock.take() is None  # held, and the holder is alive
    assert lock.release(first)
    assert db.session.get(Setting, lock.LOCK_KEY) is None
    assert lock.take() is not None


def test_an_expired_lease_of_another_host_is_broken(app):
    lease = lock.take()
    _held_elsewhere_since(minutes=5)
    assert lock.take(stale_after=timedelta(minutes=10)) is None  # lease still running
    new = lock.take(stale_after=timedelta(seconds=60))  # lease expired: taken over
    assert new is not None and new != lease


def test_a_holder_whose_lease_was_broken_does_not_release_the_new_owners_lock(app):
    old = lock.take()
    _held_elsewhere_since(minutes=5)
    new = lock.take(stale_after=timedelta(seconds=60))
    assert new is not None
    assert lock.release(old) is False
    assert db.session.get(Setting, lock.LOCK_KEY).value["lease"] == new
    assert lock.release(new) is True


def test_a_lock_whose_pid_now_names_another_process_is_broken(app):
    import subprocess

    from webapp.processes import started_at

    lease = lock.take()
    other = subprocess.Popen(["sleep", "60"])
    try:
        held = db.session.get(Setting, lock.LOCK_KEY)
        # the holder died and its pid went to `sleep`: alive by pid, not by pid and start time
        held.value = dict(held.value, pid=other.pid, started=started_at(other.pid) - 30)
        db.session.commit()
        new = lock.take()
        assert new is not None and new != lease
    finally:
        other.kill()
        other.wait()
