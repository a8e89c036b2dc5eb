"""Review actions beside confirm and correct: skip (back to the queue for another doctor, counted),
"unsure" (stored, never trained on, the report stays preliminary, the gold page offers it) and the
report's findings and impression with a comment, length-limited."""

import pytest

from tests.conftest import login, user
from webapp import labelstore
from webapp.extensions import db
from webapp.gold import goldset, pool
from webapp.models import AuditEvent, Claim, Label, Skip
from webapp.monitoring import activity, trust
from webapp.reports import study
from webapp.review import queue
from webapp.services import services


def test_a_skipped_image_goes_to_another_doctor_and_never_back(trained_app):
    doctor, doctor2 = user("doctor"), user("doctor2")
    skipped = queue.next_for(doctor)
    queue.skip(doctor, skipped.id)
    assert db.session.get(Claim, skipped.id) is None  # released at once, not after the claim runs out
    mine_next = queue.next_for(doctor)
    assert mine_next is not None and mine_next.id != skipped.id
    assert queue.next_for(doctor2).id == skipped.id  # the most informative open image, for someone else
    queue.submit(doctor, mine_next.id, "normal")
    while (image := queue.next_for(doctor)) is not None:  # the rest of the pool: never the skipped one
        assert image.id != skipped.id
        queue.submit(doctor, image.id, "normal")
    assert queue.skips_of_image(skipped.id) == 1 and queue.skips_by(doctor) == 1
    event = db.session.execute(db.select(AuditEvent).filter_by(kind="skip")).scalar_one()
    assert (event.actor_name, event.details) == ("doctor", {"image_id": skipped.id})


def test_only_the_served_image_can_be_skipped_and_twice_counts_once(trained_app):
    doctor, doctor2 = user("doctor"), user("doctor2")
    held_by_other = queue.next_for(doctor2)
    with pytest.raises(queue.LabelError) as refused:
        queue.skip(doctor, held_by_other.id)
    assert refused.value.status == 409
    assert db.session.get(Claim, held_by_other.id).user_id == doctor2.id  # the other doctor keeps it
    mine = queue.next_for(doctor)
    queue.skip(doctor, mine.id)
    queue.skip(doctor, mine.id)  # a double click
    assert db.session.execute(db.select(db.func.count(Skip.id))).scalar_one() == 1


def test_unsure_is_stored_but_never_trains_nor_counts_toward_a_round(trained_app):
    doctor = user("doctor")
    image = queue.next_for(doctor)
    before, _ = labelstore.labels_since(None)
    saved = queue.submit(doctor, image.id, "", unsure=True, comment="Left base: consolidation or atelectasis?")
    label = saved.label
    prediction = queue.predictions.latest(image.id)
    assert (label.unsure, label.label, label.agreed) == (True, prediction.predicted_class, None)
    assert label.comment == "Left base: consolidation or atelectasis?"
    assert db.session.get(Claim, image.id).state == "labeled"  # it leaves the queue like any answer
    store, classes = services().store, services().class_names
    assert image.id not in {e.image_id for e in labelstore.doctor_examples(store, classes)}
    assert labelstore.labels_since(None)[0] == before  # the training trigger does not count it
    assert trust.report(services().settings.trust, classes).overall.reviews == 0  # no agreement either way
    decided = queue.next_for(doctor)
    queue.submit(doctor, decided.id, "pneumonia")
    assert decided.id in {e.image_id for e in labelstore.doctor_examples(store, classes)}
    assert labelstore.labels_since(None)[0] == before + 1
    assert trust.report(services().settings.trust, classes).overall.reviews == 1


def test_unsure_leans_to_the_class_chosen_and_keeps_the_report_preliminary(trained_app):
    doctor = user("doctor")
    image = queue.next_for(doctor)
    label = queue.submit(doctor, image.id, "pneumonia", unsure=True).label
    assert (label.label, label.unsure, label.agreed) == ("pneumonia", True, None)
    assert study.status(image.id) == study.PRELIMINARY
    with pytest.raises(study.ReportError):  # nothing final to amend either
        study.amend(image.id, doctor, "normal", "second look")


def test_the_gold_page_offers_unsure_studies_for_blind_reads(trained_app):
    doctor, engineer = user("doctor"), user("engineer")
    unsure = queue.next_for(doctor)
    queue.submit(doctor, unsure.id, "normal", unsure=True)
    decided = queue.next_for(doctor)
    queue.submit(doctor, decided.id, "normal")
    found, _ = pool.candidates(pool.PoolFilter(show="unsure"))
    assert [(c.image.id, c.unsure, c.reviewed) for c in found] == [(unsure.id, True, False)]
    offered = {c.image.id for c in pool.candidates(pool.PoolFilter())[0]}
    assert unsure.id in offered and decided.id not in offered
    assert pool.unsure_count() == 1
    marked = goldset.mark([unsure.id, decided.id], engineer)
    assert marked.added == [unsure.id] and decided.id in marked.refused
    assert pool.unsure_count() == 0
    # the doctor who was unsure saw the prediction: the blind reads come from others
    assert goldset.next_read(doctor) is None
    assert goldset.next_read(user("doctor2")).image_id == unsure.id


def test_findings_impression_and_comment_are_stored_trimmed(trained_app):
    doctor = user("doctor")
    image = queue.next_for(doctor)
    label = queue.submit(
        doctor, image.id, "pneumonia", findings=" Right lower lobe opacity. ", impression="Pneumonia.", comment="  "
    ).label
    assert (label.findings, label.impression, label.comment) == ("Right lower lobe opacity.", "Pneumonia.", None)
    assert queue.label_to_dict(label)["findings"] == "Right lower lobe opacity."


@pytest.mark.parametrize("field", ["findings", "impression", "comment"])
def test_too_long_text_is_refused_and_nothing_is_stored(trained_app, field):
    doctor = user("doctor")
    image = queue.next_for(doctor)
    with pytest.raises(queue.LabelError, match="keep it to 4,000") as refused:
        queue.submit(doctor, image.id, "normal", **{field: "x" * (queue.MAX_TEXT + 1)})
    assert refused.value.status == 400
    assert db.session.execute(db.select(db.func.count(Label.id))).scalar_one() == 0
    assert db.session.get(Claim, image.id).state == "held"  # still the doctor's to answer


def test_the_review_form_stores_unsure_and_text_and_skips(trained_client, csrf_off):
    login(trained_client, "doctor")
    first = queue.next_for(user("doctor"))
    response = trained_client.post(f"/review/{first.id}/skip")
    assert response.status_code == 302 and response.location.endswith("/review")
    second = queue.next_for(user("doctor"))
    assert second.id != first.id
    response = trained_client.post(
        f"/review/{second.id}",
        data={"label": "normal", "unsure": "1", "findings": "Hazy right base.", "comment": "Ask for a lateral."},
        follow_redirects=True,
    )
    assert "Saved as unsure" in response.get_data(as_text=True)
    label = db.session.execute(db.select(Label).filter_by(image_id=second.id)).scalar_one()
    assert (label.unsure, label.findings, label.impression, label.comment) == (
        True,
        "Hazy right base.",
        None,
        "Ask for a lateral.",
    )
    too_long = trained_client.post(f"/review/{first.id}", data={"label": "normal", "impression": "y" * 4001})
    assert too_long.status_code == 400 and "keep it to 4,000" in too_long.get_data(as_text=True)
    assert db.session.execute(db.select(Label).filter_by(image_id=first.id)).first() is None


def test_activity_counts_skips_and_unsure_answers(trained_app):
    doctor, doctor2 = user("doctor"), user("doctor2")
    queue.skip(doctor2, queue.next_for(doctor2).id)
    queue.submit(doctor, queue.next_for(doctor).id, "normal", unsure=True)
    queue.submit(doctor, queue.next_for(doctor).id, "normal")
    found = activity.activity(7)
    by_name = {d.username: d for d in found.doctors}
    assert (by_name["doctor"].reviews, by_name["doctor"].unsure, by_name["doctor"].skips) == (2, 1, 0)
    assert (by_name["doctor2"].labels, by_name["doctor2"].skips) == (0, 1)  # only skipped: still listed
    assert found.skips == 1


def test_the_prediction_page_takes_findings_impression_and_comment_but_has_no_skip(trained_client):
    from webapp.inference import predictions

    login(trained_client, "doctor")
    image = queue.next_for(user("doctor2"))  # another doctor's image: opened from a link, not served
    page = trained_client.get(f"/predictions/{predictions.latest(image.id).id}").get_data(as_text=True)
    for name in ("findings", "impression", "comment", "unsure"):
        assert f'name="{name}"' in page, name
    assert 'maxlength="4000"' in page and 'id="skip"' not in page  # skip is the review queue's


def test_the_clinical_model_does_not_learn_from_unsure_answers(trained_app):
    from webapp.clinical import fusion, records

    doctor = user("doctor")
    unsure = queue.next_for(doctor)
    queue.submit(doctor, unsure.id, "pneumonia", unsure=True)
    decided = queue.next_for(doctor)
    queue.submit(doctor, decided.id, "pneumonia")
    for image in (unsure, decided):
        records.update(image.id, {"temperature_c": 39.2, "spo2_pct": 91}, doctor)
    champion = services().registry.version_for("champion")
    assert [study.image_id for study in fusion.training_studies(champion)] == [decided.id]
