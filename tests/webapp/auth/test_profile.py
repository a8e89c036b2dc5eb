"""How a doctor signs reports: `medal users set-name`, `medal users create --full-name --title` and the
profile page, where each user edits their own name and job title (CSRF, lengths checked, 400)."""

from __future__ import annotations

from tests.conftest import csrf_token, login, user


def _signature(name: str) -> tuple[str | None, str | None]:
    from webapp.extensions import db

    found = user(name)
    db.session.refresh(found)
    return found.full_name, found.job_title


def test_set_name_from_the_cli(app, runner):
    done = runner.invoke(
        args=["users", "set-name", "doctor", "--full-name", "Dr  Ana Rossi", "--title", "Consultant radiologist"]
    )
    assert done.exit_code == 0, done.output
    assert "Dr Ana Rossi, Consultant radiologist" in done.output
    assert _signature("doctor") == ("Dr Ana Rossi", "Consultant radiologist")

    # a new full name alone keeps the title; an empty one goes back to the username
    assert runner.invoke(args=["users", "set-name", "doctor", "--full-name", "Dr Ana Rossi-Bianchi"]).exit_code == 0
    assert _signature("doctor") == ("Dr Ana Rossi-Bianchi", "Consultant radiologist")
    assert runner.invoke(args=["users", "set-name", "doctor", "--full-name", ""]).exit_code == 0
    assert _signature("doctor") == (None, "Consultant radiologist")

    too_long = runner.invoke(args=["users", "set-name", "doctor", "--full-name", "x" * 121])
    assert too_long.exit_code != 0 and "at most 120 characters" in too_long.output
    assert _signature("doctor") == (None, "Consultant radiologist")
    assert runner.invoke(args=["users", "set-name", "nobody", "--full-name", "Dr No"]).exit_code != 0


def test_create_with_a_full_name_and_title(app, runner):
    from webapp.extensions import db
    from webapp.models import User

    created = runner.invoke(
        args=["users", "create", "rossi", "--role", "doctor", "--password", "s3cret-pass"]
        + ["--full-name", "Dr Ana Rossi", "--title", "Consultant radiologist"]
    )
    assert created.exit_code == 0, created.output
    assert _signature("rossi") == ("Dr Ana Rossi", "Consultant radiologist")

    refused = runner.invoke(
        args=["users", "create", "long", "--role", "doctor", "--password", "s3cret-pass", "--title", "t" * 81]
    )
    assert refused.exit_code != 0 and "job title must be at most 80" in refused.output
    assert db.session.execute(db.select(User).filter_by(username="long")).scalar_one_or_none() is None


def _save(client, **fields):
    token = csrf_token(client, "/profile")
    return client.post("/profile", data={"csrf_token": token, **fields})


def test_the_profile_page_edits_the_signed_in_users_own_signature(client):
    assert client.get("/profile").status_code == 302  # log in first
    login(client, "doctor")
    page = client.get("/profile").get_data(as_text=True)
    assert 'id="profile-link"' in page and "signed: <strong" in page

    saved = _save(client, full_name="Dr Ana Rossi", job_title="Consultant radiologist")
    assert saved.status_code == 302
    assert _signature("doctor") == ("Dr Ana Rossi", "Consultant radiologist")
    page = client.get("/profile").get_data(as_text=True)
    assert "Dr Ana Rossi, Consultant radiologist" in page and 'value="Dr Ana Rossi"' in page

    # the form has no field for another user: naming one changes only the signed-in user
    _save(client, full_name="Dr Eve Mallory", job_title="Registrar", username="doctor2", user_id="2")
    assert _signature("doctor2") == (None, None)
    assert _signature("doctor") == ("Dr Eve Mallory", "Registrar")


def test_the_profile_page_refuses_too_long_and_forged_posts(client):
    login(client, "engineer")
    too_long = _save(client, full_name="x" * 121, job_title="ML engineer")
    assert too_long.status_code == 400
    assert "full name must be at most 120 characters" in too_long.get_data(as_text=True)
    assert _save(client, full_name="Ann", job_title="y" * 81).status_code == 400
    assert _signature("engineer") == (None, None)  # nothing stored

    forged = client.post("/profile", data={"full_name": "Mallory", "job_title": "Attacker"})  # no CSRF token
    assert forged.status_code == 400
    assert _signature("engineer") == (None, None)
