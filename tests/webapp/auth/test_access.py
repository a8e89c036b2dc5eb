"""Must hold 1: every route is in the route -> roles table, and each role gets what the table says."""

from __future__ import annotations

import pytest
from flask import Blueprint, url_for
from werkzeug.routing import AnyConverter, IntegerConverter

from tests.conftest import api_token, change_settings, login, user
from webapp.auth import access

ROLES = ("anonymous", "doctor", "engineer", "admin")
DUMMY = {"filename": "medal.css"}  # static needs a real file; other converters take a dummy value


def _url(app, rule) -> str:
    values = {}
    for name in rule.arguments:
        converter = rule._converters[name]
        if isinstance(converter, AnyConverter):  # one of its own words, e.g. a chart's name
            values[name] = min(converter.items)
        else:
            values[name] = DUMMY.get(name, 999999 if isinstance(converter, IntegerConverter) else "x")
    with app.test_request_context():
        return url_for(rule.endpoint, **values)


def _calls(app):
    """(endpoint, method, url) for every registered route; log-out last, since it ends the session."""
    calls = [
        (rule.endpoint, method, _url(app, rule))
        for rule in app.url_map.iter_rules()
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]
    return sorted(calls, key=lambda call: call[0] == "auth.logout")


def test_every_registered_route_has_an_entry(app):
    missing = sorted({rule.endpoint for rule in app.url_map.iter_rules()} - set(access.ACCESS))
    assert not missing, f"add these endpoints to ACCESS in webapp/auth/access.py: {missing}"


# who labels is a setting: the walk runs under the default and under settings that give other roles the labels
LABEL_ROLES = (["doctor"], ["doctor", "engineer"], ["engineer"], ["doctor", "admin"])


@pytest.mark.parametrize("label_roles", LABEL_ROLES, ids="+".join)
def test_each_role_gets_what_the_table_says(app, csrf_off, label_roles):
    """Walks app.url_map as anonymous, doctor, engineer and admin (pages with a session, the API with
    a bearer token) under each `security.label_roles`: allowed means neither 401/403 nor a trip to the
    log-in page; refused means 403, or 401 (API) / a redirect to log in (pages) for anonymous."""
    change_settings(app, {"security": {"label_roles": label_roles}})
    calls = _calls(app)
    checked, wrong = 0, []
    for role in ROLES:
        client = app.test_client()
        headers = {}
        who = None
        if role != "anonymous":
            login(client, role)
            headers = api_token(app, role)
            who = user(role)
        for endpoint, method, url in calls:
            rule = access.ACCESS[endpoint]
            api = access.is_api(endpoint)
            kwargs = {"headers": headers if api else {}}
            if method in ("POST", "PUT", "PATCH") and api:
                kwargs["json"] = {}
            response = client.open(url, method=method, **kwargs)
            status, location = response.status_code, response.headers.get("Location", "")
            response.close()
            to_login = status == 302 and "/login" in location
            checked += 1
            if access.allows(rule, who):
                # log-out's own answer is the log-in page
                if status in (401, 403) or (to_login and endpoint != "auth.logout") or status >= 500:
                    wrong.append(f"{role} {method} {url}: {status} {location} (table: {rule!r}, allowed)")
            elif role == "anonymous":
                if not (status == 401 if api else to_login):
                    wrong.append(f"{role} {method} {url}: {status} {location} (table: {rule!r}, log in first)")
            elif status != 403:
                wrong.append(f"{role} {method} {url}: {status} (table: {rule!r}, 403 expected)")
    print(f"routes x roles checked: {len(calls)} x {len(ROLES)} = {checked}")
    assert not wrong, "\n".join(wrong)
    assert checked == len(calls) * len(ROLES) and len(calls) >= 40


def test_a_route_without_an_entry_is_refused_to_everyone(home):
    from webapp import create_app

    app = create_app({"TESTING": True})
    extra = Blueprint("extra", __name__)
    extra.add_url_rule("/forgotten", "forgotten", lambda: "open")
    app.register_blueprint(extra)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        response = app.test_client().get("/forgotten")
    assert response.status_code == 403
    assert "extra.forgotten has no access rule" in response.get_data(as_text=True)
