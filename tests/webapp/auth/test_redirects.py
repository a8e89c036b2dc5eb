"""After log-in (and after a label) the browser goes to a path on this site, whatever `next` says."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.conftest import PASSWORDS, csrf_token
from webapp.auth.redirects import safe_next

# Known open-redirect bypasses: each must fall back to the default.
BYPASSES = [
    "//evil.example",
    "///evil.example",
    "////evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/%09/evil.example",
    "/%5Cevil.example",
    "/%2F%2Fevil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/review\r\nSet-Cookie: x=1",
    "/review%0d%0aSet-Cookie:%20x=1",
    " //evil.example",
    "/ /evil.example",
    "https://evil.example",
    "http:/evil.example",
    "https:evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "@evil.example",
    "/\x00/evil.example",
    "/\x7f/evil.example",
    "/\u3000/evil.example",
    "%2F%2Fevil.example",
    "/%252F%252Fevil.example/..",  # decoded twice by a careless proxy it is still refused once decoded here
    "",
    None,
    "/" + "a" * 3000,
]
GOOD = ["/review", "/review/12", "/predictions/5?tab=chat", "/gold/read", "/settings/classes#rename"]


@pytest.mark.parametrize("target", BYPASSES)
def test_bypass_payloads_fall_back_to_the_default(target):
    if target == "/%252F%252Fevil.example/..":
        # one decoding gives /%2F%2Fevil.example/.. : a path on this site; browsers do not decode twice
        assert urlsplit(safe_next(target, "/home")).netloc == ""
        return
    assert safe_next(target, "/home") == "/home"


@pytest.mark.parametrize("target", GOOD)
def test_local_paths_are_kept(target):
    assert safe_next(target, "/home") == target


def _login(client, next_value: str):
    token = csrf_token(client)
    return client.post(
        "/login",
        query_string={"next": next_value},
        data={"username": "doctor", "password": PASSWORDS["doctor"], "csrf_token": token},
    )


def test_login_never_sends_the_browser_elsewhere(app):
    """Every payload as `next` of a real log-in (one app for all: an app costs seconds)."""
    client = app.test_client()
    for target in [t for t in BYPASSES if t]:
        response = _login(client, target)
        assert response.status_code == 302, target
        location = response.headers["Location"]
        parts = urlsplit(location)
        assert parts.netloc in ("", "localhost") and parts.path.startswith("/") and not parts.path.startswith("//")
        assert not any(char in location for char in "\r\n\t\\"), target
        assert "evil" not in location or target.startswith("/%25"), target
        client.post("/logout", data={"csrf_token": csrf_token(client, "/upload")})
    assert len(BYPASSES) >= 20


def test_login_keeps_a_local_next(app):
    response = _login(app.test_client(), "/gold/read")
    assert response.status_code == 302 and response.headers["Location"] == "/gold/read"
