"""The study report as a radiology report: the institution's header, the doctor's findings and
impression, the signing doctor's full name and job title, display names, doubt as doubt, and plain
words written from the final label, amendments included."""

from __future__ import annotations

from tests.conftest import api_token, csrf_token, login
from tests.webapp.reports.study_helpers import confirm, pdf_text, set_probabilities, show_as, upload_study


def test_a_signed_report_has_header_findings_impression_and_the_signers_name(trained_client, signed_study):
    login(trained_client, "engineer")
    page = trained_client.get(f"/images/{signed_study['id']}/report").get_data(as_text=True)
    pdf = pdf_text(
        trained_client.get(f"/api/v1/images/{signed_study['id']}/report.pdf", headers=signed_study["headers"]).data
    )
    flat = " ".join(pdf.split())
    for text in (page, flat):
        assert "St Mary&#39;s Hospital" in text or "St Mary's Hospital" in text
        assert "Department of Radiology" in text and "Praed Street, London" in text
        assert "Patchy airspace opacity in the right lower zone." in text
        assert "Right lower lobe consolidation, in keeping with infection." in text
        assert "Dr Ana Rossi" in text and "Consultant radiologist" in text
        assert "Lobar pneumonia" in text  # the display name, in the final label and the model's table
    assert "Reported and signed by Dr Ana Rossi, Consultant radiologist" in flat
    assert ">pneumonia<" not in page  # no identifier where a person reads (the form's values keep them)
    assert "a lung infection" in flat  # the plain summary speaks of the final label


def test_without_text_the_impression_reads_from_the_final_label(trained_app, trained_client):
    show_as("pneumonia", "Lobar pneumonia")
    headers = api_token(trained_app, "doctor")
    image_id = upload_study(trained_client, headers, seed=62)["image_id"]
    confirm(trained_client, headers, image_id, "pneumonia")
    login(trained_client, "doctor")
    page = trained_client.get(f"/images/{image_id}/report").get_data(as_text=True)
    assert '<p class="doctor-text impression" id="impression">Lobar pneumonia.</p>' in page
    assert "No findings text was entered." in page
    assert "<strong>doctor</strong>" in page  # no full name set: the username signs


def test_an_amended_report_speaks_of_the_amended_class_in_plain_words(trained_client, signed_study):
    from webapp.reports import study as reports

    image_id = signed_study["id"]  # the model said pneumonia at 80 %, and the doctor agreed
    before = reports.gather(reports.goldset.visible_image(image_id)).summary
    assert "a lung infection" in before and "about 80 %" in before

    login(trained_client, "doctor2")  # no full name: signs with the username
    token = csrf_token(trained_client, f"/images/{image_id}/report")
    amended = trained_client.post(
        f"/images/{image_id}/report/amend",
        data={"label": "normal", "reason": "Lateral film: overlapping soft tissue.", "csrf_token": token},
    )
    assert amended.status_code == 302
    page = trained_client.get(f"/images/{image_id}/report").get_data(as_text=True)
    summary = page.split('id="plain-summary">')[1].split("</p>")[0]
    assert "no sign of illness in the lungs" in summary  # normal, the amended label
    assert "lung infection" not in summary and "80" not in summary  # nothing of the class amended away
    assert '<p class="doctor-text impression" id="impression">Normal.</p>' in page
    assert "Amended</strong> from Lobar pneumonia to Normal by doctor2" in page
    assert "superseded): Right lower lobe consolidation" in page  # the first impression kept, marked
    assert "First reported by Dr Ana Rossi, Consultant radiologist" in page
    latest = " ".join(pdf_text(trained_client.get(f"/images/{image_id}/report.pdf").data).split())
    assert "no sign of illness in the lungs" in latest and "Amended and signed by doctor2" in latest


def test_the_model_section_says_uncertain_between_two_close_classes(trained_app, trained_client):
    show_as("pneumonia", "Lobar pneumonia")
    headers = api_token(trained_app, "doctor")
    image_id = upload_study(trained_client, headers, seed=63)["image_id"]
    set_probabilities(image_id, {"normal": 0.52, "pneumonia": 0.48})
    login(trained_client, "doctor")
    page = trained_client.get(f"/images/{image_id}/report").get_data(as_text=True)
    assert "uncertain between Normal and Lobar pneumonia" in page
    assert "Preliminary: the model is uncertain between Normal and Lobar pneumonia" in page
    assert "It could also be a lung infection" in page  # the plain words say the doubt too


def test_a_gold_study_is_signed_by_its_adjudicator_or_says_where_its_label_came_from(trained_client):
    from tests.conftest import seed_gold, user
    from tests.webapp.reports.study_helpers import sign_as
    from webapp.extensions import db
    from webapp.models import GoldItem

    imported, adjudicated = seed_gold(2, seed=5)
    sign_as("admin", "Dr Lena Weber", "Clinical lead, radiology")
    db.session.get_one(GoldItem, adjudicated).adjudicated_by_id = user("admin").id
    db.session.commit()
    login(trained_client, "doctor")
    page = trained_client.get(f"/images/{imported}/report").get_data(as_text=True)
    assert "Label adjudicated in the gold set" in page and "signed by" not in page
    page = trained_client.get(f"/images/{adjudicated}/report").get_data(as_text=True)
    assert "Reported and signed by\n" in page and "<strong>Dr Lena Weber</strong>, Clinical lead, radiology" in page
