"""Log-in: a rate limit per address, a lockout per account, no timing tell for unknown names, slow hashes."""

from __future__ import annotations

import werkzeug.security

from tests.conftest import PASSWORDS, csrf_token, user
from webapp.models import AuditEvent


def _attempt(client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_token(client)},
        environ_base={"REMOTE_ADDR": address},
    )


def test_failed_logins_from_one_address_are_limited_and_successes_do_not_count(app):
    from tests.conftest import change_settings

    change_settings(app, {"security": {"login_rate_limit": "5 per minute", "lockout_failures": 100}})
    client = app.test_client()
    for _ in range(8):  # successful log-ins are not counted against the address
        assert _attempt(client, "doctor", PASSWORDS["doctor"]).status_code == 302
        client.post("/logout", data={"csrf_token": csrf_token(client, "/upload")})
    statuses = [_attempt(client, f"nobody{i}", "wrong-password").status_code for i in range(7)]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
    assert "Too many log-in attempts" in _attempt(client, "doctor", "x").get_data(as_text=True)
    # another address is not held back by this one
    assert _attempt(client, "doctor", PASSWORDS["doctor"], address="10.0.0.2").status_code == 302


def test_an_account_waits_after_ten_wrong_passwords_even_for_the_right_one(app):
    client = app.test_client()
    for i in range(10):
        assert _attempt(client, "doctor2", "wrong-password", address=f"10.1.0.{i}").status_code == 200
    response = _attempt(client, "doctor2", PASSWORDS["doctor2"], address="10.2.0.1")
    assert response.status_code == 200 and "waits 15 minutes" in response.get_data(as_text=True)
    assert user("doctor2").locked_until is not None
    locked = [e for e in AuditEvent.query.filter_by(kind="account_locked") if e.details["user"] == "doctor2"]
    assert len(locked) == 1
    # the same answer as for a name nobody has: the page does not tell who exists
    unknown = _attempt(client, "no-such-user", "wrong-password", address="10.2.0.2").get_data(as_text=True)
    assert (
        "Unknown user name or wrong password" in unknown
        and "Unknown user name or wrong password" in response.get_data(as_text=True)
    )
    # a right password before the limit resets the count
    for _ in range(9):
        _attempt(client, "doctor", "wrong-password", address="10.3.0.1")
    assert _attempt(client, "doctor", PASSWORDS["doctor"], address="10.3.0.2").status_code == 302
    assert user("doctor").failed_logins == 0


def test_an_unknown_name_costs_one_password_hash_like_a_known_one(app, monkeypatch):
    """The timing tell was a hash checked only for known users; count the checks on each path."""
    import webapp.auth.views as views

    checked = []
    real = werkzeug.security.check_password_hash

    def counting(hashed, password):
        checked.append(hashed.split(":")[0])
        return real(hashed, password)

    monkeypatch.setattr(views, "check_password_hash", counting)
    monkeypatch.setattr("webapp.models.check_password_hash", counting)
    client = app.test_client()
    _attempt(client, "no-such-user", "wrong-password")
    _attempt(client, "engineer", "wrong-password")
    assert checked == ["scrypt", "scrypt"]


def test_passwords_are_stored_with_a_slow_salted_hash(app):
    stored = user("doctor").password_hash
    method = stored.split("$")[0]
    assert method.startswith("scrypt:") and int(method.split(":")[1]) >= 2**15
    assert PASSWORDS["doctor"] not in stored and user("doctor2").password_hash.split("$")[1] != stored.split("$")[1]
