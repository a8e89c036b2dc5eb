"""CSRF on every form: each template's POST form carries the token, and each form endpoint refuses a post without it."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import login, user
from tests.webapp.auth.test_access import _calls
from webapp.auth import access

WEBAPP = Path(__file__).resolve().parents[3] / "webapp"
FORM = re.compile(r"<form\b(?P<attrs>[^>]*)>(?P<body>.*?)</form>", re.S | re.I)


def test_every_post_form_in_the_templates_carries_the_token():
    forms, missing = 0, []
    for template in sorted(WEBAPP.rglob("*.html")):
        for found in FORM.finditer(template.read_text()):
            if 'method="post"' not in found["attrs"].lower():
                continue
            forms += 1
            if "csrf_token" not in found["body"] and "hidden_tag()" not in found["body"]:
                missing.append(f"{template.relative_to(WEBAPP)}: <form{found['attrs']}>")
    assert not missing, missing
    assert forms >= 10


def test_every_form_endpoint_refuses_a_post_without_the_token(app):
    """As a user the route -> roles table lets in (so the refusal is CSRF's, not the role's)."""
    refused = []
    posts = [
        (endpoint, url) for endpoint, method, url in _calls(app) if method == "POST" and not access.is_api(endpoint)
    ]
    clients = {}
    for endpoint, url in posts:
        rule = access.ACCESS[endpoint]
        name = next((n for n in ("doctor", "engineer", "admin") if access.allows(rule, user(n))), None)
        if name not in clients:
            clients[name] = app.test_client()
            if name is not None:
                login(clients[name], name)
        response = clients[name].post(url, data={"label": "normal"})
        if response.status_code != 400 or "CSRF" not in response.get_data(as_text=True):
            refused.append(f"{endpoint} as {name}: {response.status_code}")
    assert not refused, refused
    assert len(posts) >= 15
