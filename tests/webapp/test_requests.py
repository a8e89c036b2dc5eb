"""Request-level hostility: ids too large for the database, JSON nested too deep, and bodies the server
never read on a keep-alive connection."""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from werkzeug.test import EnvironBuilder

from tests.conftest import api_token, login, seed_pool

HUGE = [2**31, 2**63, 2**64, 10**30]


def _get_or_post(client, method: str, path: str, **kwargs):
    return client.get(path, **kwargs) if method == "GET" else client.post(path, **kwargs)


URL_IDS = [
    ("doctor", "GET", "/images/{}.png"),
    ("doctor", "GET", "/images/{}/thumbnail.png"),
    ("doctor", "GET", "/predictions/{}"),
    ("doctor", "GET", "/predictions/{}/heatmap.png"),
    ("doctor", "GET", "/predictions/{}/chat"),
    ("doctor", "GET", "/api/v1/images/{}"),
    ("doctor", "POST", "/api/v1/predictions/{}/chat"),
    ("engineer", "POST", "/api/v1/models/{}/approve"),
    ("engineer", "POST", "/api/v1/models/{}/gate"),
]


def test_an_id_too_large_for_the_database_is_not_found(app, client):
    login(client, "doctor")
    tokens = {role: api_token(app, role) for role in ("doctor", "engineer")}
    answers = {}
    for role, method, template in URL_IDS:
        headers = tokens[role] if template.startswith("/api/") else {}
        for number in HUGE:
            response = _get_or_post(client, method, template.format(number), headers=headers, json={"reason": "x"})
            answers[(template, number)] = response.status_code
    # 405 where the same path has a rule for another method: the router never reaches a view
    assert all(status in (404, 405) for status in answers.values()), answers
    assert sum(status == 404 for status in answers.values()) >= len(answers) - len(HUGE)


def test_the_largest_id_the_database_holds_is_still_routed(app, client):
    response = client.get(f"/api/v1/images/{2**31 - 1}", headers=api_token(app, "doctor"))
    assert response.status_code == 404
    assert response.get_json()["error"]  # the route's own answer, not the router's


def test_an_integer_too_large_in_a_json_body_is_a_400_and_stores_nothing(app, client):
    from webapp.extensions import db
    from webapp.models import Label

    image_id = seed_pool(1)[0]
    headers = api_token(app, "doctor")
    for field in ("prediction_id", "time_spent_ms"):
        for number in HUGE:
            response = client.post(
                f"/api/v1/images/{image_id}/labels", headers=headers, json={"label": "normal", field: number}
            )
            assert response.status_code == 400, (field, number, response.data)
            assert "out of range" in response.get_json()["error"]
    assert db.session.execute(db.select(Label)).first() is None


def test_an_id_too_large_in_a_form_is_a_4xx(app, client):
    from webapp.extensions import db
    from webapp.models import Label

    app.config["WTF_CSRF_ENABLED"] = False
    image_id = seed_pool(1)[0]
    login(client, "doctor")
    response = client.post(f"/review/{image_id}", data={"label": "normal", "prediction_id": str(2**63)})
    assert 400 <= response.status_code < 500, response.data[:300]
    assert db.session.execute(db.select(Label)).first() is None


@pytest.mark.postgres
@pytest.mark.parametrize("field", ["prediction_id", "time_spent_ms"])
def test_a_number_too_large_in_a_form_is_a_4xx_on_postgres(pg_app, field):
    from webapp.extensions import db
    from webapp.models import Label

    pg_app.config["WTF_CSRF_ENABLED"] = False
    client = pg_app.test_client()
    image_id = seed_pool(1)[0]
    login(client, "doctor")
    response = client.post(f"/review/{image_id}", data={"label": "normal", field: str(2**63)})
    assert response.status_code < 500, response.data[:300]
    stored = db.session.execute(db.select(Label)).scalars().all()
    assert all(label.time_spent_ms is None and label.prediction_id is None for label in stored)


def _nested(depth: int) -> bytes:
    return b'{"label": ' + b"[" * depth + b"]" * depth + b"}"


def test_json_nested_deep_is_a_400_through_a_real_route(app, client):
    from webapp.extensions import db
    from webapp.models import Label

    image_id = seed_pool(1)[0]
    headers = {**api_token(app, "doctor"), "Content-Type": "application/json"}
    for depth in (50_000, 21):
        response = client.post(f"/api/v1/images/{image_id}/labels", headers=headers, data=_nested(depth))
        assert response.status_code == 400, (depth, response.data[:200])
        assert response.get_json()["error"]
    assert db.session.execute(db.select(Label)).first() is None


# --- bodies the server never read --------------------------------------------------------------


def _call(app, method: str, path: str, body: bytes, headers: dict | None = None) -> tuple[int, int]:
    """Run one request through the real WSGI app; returns (status, bytes of the body left unread)."""
    stream = io.BytesIO(body)
    environ = EnvironBuilder(
        method=method, path=path, headers=headers or {}, content_type="application/octet-stream"
    ).get_environ()
    environ.update({"wsgi.input": stream, "CONTENT_LENGTH": str(len(body))})
    status = {}

    def start_response(line, response_headers, exc_info=None):
        status["code"] = int(line.split()[0])

    b"".join(app.wsgi_app(environ, start_response))
    return status["code"], len(body) - stream.tell()


REFUSED = [
    ("POST", "/api/v1/images", None, 401),  # no token
    ("POST", "/api/v1/models/1/approve", "doctor", 403),  # the wrong role
    ("POST", "/upload", None, None),  # a page: log in first (a redirect or 401)
    ("POST", "/nowhere", None, 404),
    ("DELETE", "/api/v1/images", None, 405),
]


def test_an_error_answer_reads_the_body_it_did_not_need(app):
    for method, path, role, expected in REFUSED:
        headers = api_token(app, role) if role else {}
        status, unread = _call(app, method, path, b"x" * 300_000, headers)
        assert status == expected if expected is not None else status >= 300, (path, status)
        assert unread == 0, (path, status)


def test_a_csrf_failure_reads_the_body(app):
    app.config["WTF_CSRF_ENABLED"] = True
    status, unread = _call(app, "POST", "/login", b"username=doctor&password=x" + b"&pad=" + b"y" * 200_000)
    assert status == 400
    assert unread == 0


def test_a_body_over_the_upload_limit_is_not_read_for_nothing(app):
    app.config["MAX_CONTENT_LENGTH"] = 100_000
    status, unread = _call(app, "POST", "/api/v1/images", b"x" * 300_000)
    assert status in (401, 413)
    assert unread > 0  # the server closes such a connection rather than reading 300 kB it refused


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def gunicorn(app, tmp_path):
    """`medal web` (gunicorn, threaded workers) on the test's database, as a separate process."""
    port = _free_port()
    medal = Path(sys.executable).with_name("medal")
    log = (tmp_path / "web.log").open("wb")
    process = subprocess.Popen(
        [str(medal), "web", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    deadline = time.monotonic() + 180
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail((tmp_path / "web.log").read_text()[-2000:])
            time.sleep(0.3)
    yield port
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.mark.slow
def test_a_keep_alive_connection_survives_a_refused_post_with_a_body(app, gunicorn):
    token = api_token(app, "doctor")
    connection = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=30)
    refused = [
        ("POST", "/api/v1/images", {}, 401),  # no token
        ("POST", "/api/v1/models/1/approve", token, 403),  # a doctor cannot approve
        ("POST", "/login", {"Content-Type": "application/x-www-form-urlencoded"}, 400),  # no CSRF token
    ]
    for method, path, headers, status in refused:
        connection.request(method, path, body=b"x" * 1_000_000, headers=headers)
        first = connection.getresponse()
        first.read()
        assert first.status == status
        sock = connection.sock
        assert sock is not None, "the server asked to close the connection"
        connection.request("GET", "/api/v1/models/history", headers=api_token(app, "engineer"))
        second = connection.getresponse()
        assert second.status == 200, second.read()[:200]
        assert json.loads(second.read())["events"] is not None
        assert connection.sock is sock  # the same connection, not a quiet reconnect
    connection.close()


@pytest.mark.slow
def test_a_connection_idle_longer_than_gunicorns_default_keep_alive_is_still_open(app, gunicorn):
    """gunicorn's own keep-alive (2 s) closed idle connections a client was about to reuse: the next
    request on one was reset (a reviewer thread under load saw "connection reset by peer")."""
    headers = api_token(app, "engineer")
    connection = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=30)
    connection.request("GET", "/api/v1/models/history", headers=headers)
    first = connection.getresponse()
    first.read()
    assert first.status == 200
    sock = connection.sock
    time.sleep(3.5)
    assert sock is not None and not _closed_by_peer(sock), "the server closed the idle connection"
    connection.request("GET", "/api/v1/models/history", headers=headers)
    second = connection.getresponse()
    assert second.status == 200, second.read()[:200]
    second.read()
    assert connection.sock is sock  # the same connection, not a quiet reconnect
    connection.close()


def _closed_by_peer(sock: socket.socket) -> bool:
    """Whether the other end closed the connection: readable with nothing to read."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    finally:
        sock.setblocking(True)
