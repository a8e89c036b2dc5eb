"""Behind the TLS proxy every request comes from the proxy's address: the log-in limit must count
each client by the address the proxy forwards, or one guesser locks the whole hospital out."""

from __future__ import annotations

import pytest

from tests.conftest import csrf_token


@pytest.fixture
def proxied(home, monkeypatch):
    monkeypatch.setenv("MEDAL_SECURITY__PROXY_HOPS", "1")
    monkeypatch.setenv("MEDAL_SECURITY__LOGIN_RATE_LIMIT", "2 per minute")
    from tests.conftest import _make_app

    yield from _make_app()


def _wrong_login(client, address: str) -> int:
    # over HTTPS, Flask-WTF also wants a same-origin Referer, as a browser sends
    headers = {"X-Forwarded-For": address, "X-Forwarded-Proto": "https", "Referer": "https://localhost/login"}
    token = csrf_token(client)
    data = {"username": "doctor", "password": "wrong-password", "csrf_token": token}
    return client.post("/login", data=data, headers=headers).status_code


def test_the_login_limit_counts_each_forwarded_client(proxied):
    guesser, colleague = proxied.test_client(), proxied.test_client()
    codes = [_wrong_login(guesser, "10.1.1.1") for _ in range(3)]
    assert codes[-1] == 429, codes
    assert _wrong_login(colleague, "10.2.2.2") != 429  # another ward's workstation is not blocked
