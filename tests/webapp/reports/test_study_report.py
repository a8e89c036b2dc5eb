"""Study reports: the PDF from the page's template, preliminary -> final -> amended with every revision
kept, the amended label in training, hidden gold images, and no patient identifier on paper."""

from __future__ import annotations

import pytest

from tests.conftest import api_token, csrf_token, login, seed_pool, user
from tests.webapp.reports.study_helpers import PATIENT_ID, pdf_text, upload_study


@pytest.fixture
def study(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    uploaded = upload_study(trained_client, headers)
    return {"id": uploaded["image_id"], "prediction": uploaded["prediction"], "headers": headers}


def _pdf(client, study) -> str:
    response = client.get(f"/api/v1/images/{study['id']}/report.pdf", headers=study["headers"])
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    return pdf_text(response.data)


def _amend(client, image_id, label, reason="Lateral film reviewed: consolidation is not present."):
    return client.post(
        f"/images/{image_id}/report/amend",
        data={"label": label, "reason": reason, "csrf_token": csrf_token(client, f"/images/{image_id}/report")},
    )


def test_preliminary_final_amended_with_revisions_kept(trained_app, trained_client, study):
    from webapp.extensions import db
    from webapp.labelstore import doctor_examples
    from webapp.models import AuditEvent
    from webapp.reports import study as reports
    from webapp.services import services

    image_id, predicted = study["id"], study["prediction"]["predicted_class"]
    text = _pdf(trained_client, study)
    assert "PRELIMINARY" in text and "model version v1" in text.replace("\n", " ")
    assert "supports, and does not replace" in text
    assert reports.status(image_id) == "preliminary"

    # the doctor confirms in the review: the report becomes final, naming who and the label
    labeled = trained_client.post(
        f"/api/v1/images/{image_id}/labels", headers=study["headers"], json={"label": predicted}
    )
    assert labeled.status_code == 201
    text = _pdf(trained_client, study)
    text = " ".join(text.split())
    assert "FINAL" in text and f"Final label: {predicted.capitalize()}" in text  # its display name
    assert "Reported and signed by doctor" in text  # no full name set: the username signs
    assert reports.status(image_id) == "final"

    # another doctor amends from the report page (cookie, CSRF): a third revision, the first two kept
    other = "normal" if predicted == "pneumonia" else "pneumonia"
    login(trained_client, "doctor2")
    answer = _amend(trained_client, image_id, other)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert reports.status(image_id) == "amended"
    page = trained_client.get(f"/images/{image_id}/report").get_data(as_text=True)
    assert "AMENDED" in page and "Lateral film reviewed" in page
    listed = trained_client.get(f"/api/v1/images/{image_id}/report", headers=study["headers"]).get_json()
    assert [r["status"] for r in listed["revisions"]] == ["amended", "final", "preliminary"]
    assert [r["label"] for r in listed["revisions"]] == [other, predicted, None]
    first = trained_client.get(f"/images/{image_id}/report/1.pdf")
    assert first.status_code == 200 and "PRELIMINARY" in pdf_text(first.data)
    second = pdf_text(trained_client.get(f"/images/{image_id}/report/2.pdf").data)
    assert "FINAL" in second and "AMENDED" not in second
    latest = " ".join(pdf_text(trained_client.get(f"/images/{image_id}/report.pdf").data).split())
    assert "AMENDED" in latest and f"Final label: {other.capitalize()}" in latest and "signed by doctor2" in latest

    event = db.session.execute(db.select(AuditEvent).filter_by(kind="report_amended")).scalar_one()
    assert event.actor_name == "doctor2" and event.details["to"] == other
    # training reads the amended label; the review label (agreement with the model) stays as answered
    trained = {e.image_id: e.label for e in doctor_examples(services().store, services().class_names)}
    assert trained[image_id] == other


def test_report_never_shows_the_patient_identifier(trained_client, study):
    from webapp.extensions import db
    from webapp.models import Image

    response = trained_client.get(f"/api/v1/images/{study['id']}/report.pdf", headers=study["headers"])
    key = db.session.get(Image, study["id"]).patient_key
    text = pdf_text(response.data)
    assert PATIENT_ID not in text and PATIENT_ID.encode() not in response.data
    assert key not in text and key[:8] in text  # the pseudonym shortened, never whole
    assert "north-ward" in text and "7" in text


def test_amendments_are_refused_unless_they_make_sense(trained_app, trained_client, study):
    image_id = study["id"]
    login(trained_client, "doctor")
    assert _amend(trained_client, image_id, "normal").status_code == 409  # nothing confirmed yet
    trained_client.post(f"/api/v1/images/{image_id}/labels", headers=study["headers"], json={"label": "normal"})
    assert _amend(trained_client, image_id, "normal").status_code == 409  # already the label
    assert _amend(trained_client, image_id, "pneumonia", reason="  ").status_code == 400
    assert _amend(trained_client, image_id, "no-such-class").status_code == 400
    no_csrf = trained_client.post(f"/images/{image_id}/report/amend", data={"label": "pneumonia", "reason": "x"})
    assert no_csrf.status_code == 400
    login(trained_client, "engineer")
    assert _amend(trained_client, image_id, "pneumonia").status_code == 403
    from webapp.reports import study as reports

    assert reports.status(image_id) == "final"
    assert [r.status for r in reports.revisions(image_id)] == ["final", "preliminary"]  # no amended one


def test_missing_and_blind_gold_studies_are_404(trained_app, trained_client):
    from webapp.gold import goldset

    headers = api_token(trained_app, "doctor")
    hidden = seed_pool(1, seed=31)[0]
    goldset.mark([hidden], user("engineer"))
    login(trained_client, "doctor")
    for image_id in (hidden, 999999):
        assert trained_client.get(f"/images/{image_id}/report").status_code == 404
        assert trained_client.get(f"/images/{image_id}/report.pdf").status_code == 404
        assert trained_client.get(f"/api/v1/images/{image_id}/report.pdf", headers=headers).status_code == 404
        assert trained_client.get(f"/api/v1/images/{image_id}/fhir", headers=headers).status_code == 404
    assert trained_client.get("/api/v1/images/1/report.pdf").status_code == 401  # no token, no report


def test_the_pdf_fetches_nothing_over_the_network():
    from webapp.reports.study import local_only

    fetcher = local_only()
    for url in ("http://example.org/tracker.png", "https://example.org/font.woff", "file:///etc/passwd"):
        with pytest.raises(ValueError, match="disallowed protocol"):
            fetcher.fetch(url)
    assert fetcher.fetch("data:text/plain;base64,aGk=").read() == b"hi"
