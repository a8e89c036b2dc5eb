"""Sessions end at log-out (a copied cookie too), at a role change; Secure cookies and headers."""

from __future__ import annotations

import re

from tests.conftest import csrf_token, login


def _cookie(client) -> str:
    return client.get_cookie("session").value


def test_a_session_cookie_stops_working_after_log_out(app):
    client = app.test_client()
    login(client, "doctor")
    stolen = _cookie(client)
    assert client.get("/upload").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf_token(client, "/upload")}).status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    response = replay.get("/upload")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_role_change_ends_the_sessions_and_is_in_the_history(app, runner):
    from webapp.models import AuditEvent

    client = app.test_client()
    login(client, "engineer")
    assert client.get("/training").status_code == 200
    result = runner.invoke(args=["users", "set-role", "engineer", "doctor"])
    assert result.exit_code == 0, result.output
    assert client.get("/training").status_code == 302  # logged out, not an engineer's page any more
    login(client, "engineer")
    assert client.get("/training").status_code == 403
    event = AuditEvent.query.filter_by(kind="role_changed").one()
    assert event.details == {"user": "engineer", "from": "engineer", "to": "doctor"} and event.actor_name == "system"

    assert runner.invoke(args=["users", "deactivate", "engineer"]).exit_code == 0
    assert client.get("/upload").status_code == 302
    response = client.post(
        "/login", data={"username": "engineer", "password": "engineer-pass", "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 200  # refused
    assert AuditEvent.query.filter_by(kind="user_deactivated").one().details["user"] == "engineer"


def test_default_headers_on_a_page(app):
    client = app.test_client()
    login(client, "doctor")
    headers = client.get("/upload").headers
    assert headers["Cache-Control"] == "no-store"
    assert "camera=()" in headers["Permissions-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in headers
    assert not client.get_cookie("session").secure  # plain HTTP by default; secure_cookies turns it on
    static = client.get("/static/medal.css")
    static.close()
    assert "no-store" not in static.headers.get("Cache-Control", "")


def test_secure_cookies_and_hsts_for_https_deployments(home, monkeypatch):
    from tests.conftest import _make_app

    monkeypatch.setenv("MEDAL_SECURITY__SECURE_COOKIES", "true")
    for app in _make_app():
        client = app.test_client()
        page = client.get("/login", base_url="https://localhost").get_data(as_text=True)
        token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        response = client.post(
            "/login",
            data={"username": "doctor", "password": "doctor-pass", "csrf_token": token},
            base_url="https://localhost",
            headers={"Referer": "https://localhost/login"},
        )
        assert response.status_code == 302
        set_cookie = response.headers["Set-Cookie"]
        assert "Secure" in set_cookie and "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
