"""Amendments of one study are serialised: doctors amending at the same instant leave a chain in
which each amendment starts from the label the one before it left, one amended revision each, and
every other doctor gets a 409 naming what got in first. On SQLite and PostgreSQL, real threads."""

from __future__ import annotations

from tests.conftest import csrf_token, login, race, seed_pool, user
from webapp.classes import catalog
from webapp.extensions import db
from webapp.models import AuditEvent, Label, LabelAmendment, User
from webapp.reports import study
from webapp.services import services

DOCTORS = [f"amender{i}" for i in range(8)]
REASON = "Second reading of the lateral film."


def _confirmed_study() -> int:
    """A study a doctor confirmed as normal, its final report issued, eight doctors and a third class."""
    catalog.add("viral", services().settings.class_names)
    for name in DOCTORS:
        row = User(username=name, role="doctor")
        row.set_password("amender-pass")
        db.session.add(row)
    image_id = seed_pool(1, seed=31)[0]
    db.session.add(Label(image_id=image_id, user_id=user("doctor").id, label="normal", channel="web"))
    db.session.commit()
    assert study.issue(image_id)[1].status == "final"  # what every doctor has open
    return image_id


def _amend(image_id: int):
    def amend(name: str) -> int:
        target = "viral" if DOCTORS.index(name) % 2 else "pneumonia"
        return study.amend(image_id, user(name), target, REASON).revision

    return amend


def _assert_serialised(image_id: int, outcomes: list) -> None:
    issued = [outcome for outcome in outcomes if isinstance(outcome, int)]
    refused = [outcome for outcome in outcomes if not isinstance(outcome, int)]
    assert all(isinstance(error, study.ReportError) and error.status == 409 for error in refused), refused
    # every refusal names what got in first: the doctor who amended, or the label it is already
    for error in refused:
        assert any(name in str(error) for name in DOCTORS) or "already" in str(error), error
    amendments = list(
        db.session.execute(db.select(LabelAmendment).filter_by(image_id=image_id).order_by(LabelAmendment.id)).scalars()
    )
    labels = ["normal"] + [amendment.label for amendment in amendments]
    assert [amendment.previous_label for amendment in amendments] == labels[:-1]  # each saw the one before
    assert all(amendment.label != amendment.previous_label for amendment in amendments)  # no viral -> viral
    assert 1 <= len(amendments) == len(issued)
    amended = [report for report in reversed(study.revisions(image_id)) if report.status == "amended"]
    assert [report.label for report in amended] == labels[1:]  # one amended revision per amendment
    assert sorted(issued) == [report.revision for report in amended]
    events = db.session.execute(db.select(AuditEvent).filter_by(kind="report_amended")).scalars().all()
    assert len(events) == len(amendments)


def test_doctors_amending_one_study_at_once_are_serialised_on_sqlite(app):
    image_id = _confirmed_study()
    _assert_serialised(image_id, race(app, _amend(image_id), DOCTORS))


def test_doctors_amending_one_study_at_once_are_serialised_on_postgres(pg_app):
    image_id = _confirmed_study()
    _assert_serialised(image_id, race(pg_app, _amend(image_id), DOCTORS))


def test_a_doctor_amending_from_a_page_another_doctor_amended_since_gets_409_naming_it(app):
    image_id = _confirmed_study()
    first, second = app.test_client(), app.test_client()
    login(first, "doctor")
    login(second, "doctor2")
    token = csrf_token(second, f"/images/{image_id}/report")  # doctor2 opens the report at revision 1
    page = second.get(f"/images/{image_id}/report").get_data(as_text=True)
    assert 'name="revision" value="1"' in page
    answer = _post_amend(first, image_id, "viral", csrf_token(first, f"/images/{image_id}/report"), revision=1)
    assert answer.status_code == 302  # doctor amends first: revision 2
    stale = _post_amend(second, image_id, "pneumonia", token, revision=1)
    assert stale.status_code == 409
    assert "doctor amended this study to viral" in stale.get_data(as_text=True)
    assert [r.label for r in study.revisions(image_id)][:2] == ["viral", "normal"]
    seen = _post_amend(second, image_id, "pneumonia", token, revision=2)  # after reading revision 2
    assert seen.status_code == 302
    assert db.session.execute(db.select(LabelAmendment.previous_label).order_by(LabelAmendment.id)).scalars().all() == [
        "normal",
        "viral",
    ]


def _post_amend(client, image_id: int, label: str, token: str, revision: int):
    data = {"label": label, "reason": REASON, "csrf_token": token, "revision": str(revision)}
    return client.post(f"/images/{image_id}/report/amend", data=data)
