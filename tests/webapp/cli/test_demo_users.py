"""The demo's users sign reports with the full names and job titles of config.yaml `demo.users`."""

from __future__ import annotations

from tests.conftest import user


def test_demo_users_get_full_names_and_titles(app):
    from webapp.cli import demo
    from webapp.extensions import db
    from webapp.services import services

    configured = services().settings.demo.users
    assert configured["doctor"].full_name and configured["doctor"].job_title  # the shipped config names them
    user("doctor").full_name = "Dr Set On The Profile Page"  # the test app's doctor exists already
    db.session.commit()

    lines = list(demo._users(configured))
    assert lines == []  # the test app has every demo user name already: none is created again
    assert user("doctor").full_name == "Dr Set On The Profile Page"  # a name set since is kept
    engineer = user("engineer")
    expected = configured["engineer"]
    assert (engineer.full_name, engineer.job_title) == (expected.full_name, expected.job_title)
