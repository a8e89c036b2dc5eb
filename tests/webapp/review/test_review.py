"""The review queue: uncertainty order, claims, labels with who/when/agreement, double submits."""

from tests.conftest import login, seed_pool
from webapp.extensions import db
from webapp.models import Claim, Image, Label, Prediction, QueryScore, User
from webapp.review import queue


def _user(name: str) -> User:
    return db.session.execute(db.select(User).filter_by(username=name)).scalar_one()


def test_queue_serves_least_confident_first(trained_app):
    image = queue.next_for(_user("doctor"))
    version = trained_app.extensions["medal"].registry.version_for("champion")
    confidences = {
        p.image_id: p.confidence
        for p in db.session.execute(db.select(Prediction).filter_by(model_version=version)).scalars()
    }
    pool = [i for i in confidences if i != image.id and db.session.get(Claim, i) is None]
    open_pool = [i for i in pool if db.session.execute(db.select(Label).filter_by(image_id=i)).first() is None]
    assert confidences[image.id] <= min(confidences[i] for i in open_pool)
    rank = db.session.execute(
        db.select(QueryScore.rank).filter_by(image_id=image.id, model_version=version, strategy="least_confidence")
    ).scalar_one()
    assert rank == 0


def test_two_doctors_never_get_the_same_image(trained_app):
    first = queue.next_for(_user("doctor"))
    second = queue.next_for(_user("doctor2"))
    assert first.id != second.id
    assert queue.next_for(_user("doctor")).id == first.id  # a reload keeps the same image


def test_label_records_who_when_prediction_agreement_and_time(trained_app):
    doctor = _user("doctor")
    image = queue.next_for(doctor)
    prediction = db.session.execute(db.select(Prediction).filter_by(image_id=image.id)).scalars().first()
    other = next(c for c in ["normal", "pneumonia"] if c != prediction.predicted_class)
    saved = queue.submit(doctor, image.id, other, prediction_id=prediction.id, time_spent_ms=4200)
    assert saved.created
    label = saved.label
    assert (label.user.username, label.label, label.prediction_id, label.agreed, label.time_spent_ms) == (
        "doctor",
        other,
        prediction.id,
        False,
        4200,
    )
    assert label.created_at is not None
    assert db.session.get(Claim, image.id).state == "labeled"  # kept: nobody is served it again
    assert queue.next_for(doctor).id != image.id


def test_double_submit_stores_one_label(trained_app):
    doctor = _user("doctor")
    image = queue.next_for(doctor)
    first = queue.submit(doctor, image.id, "normal")
    second = queue.submit(doctor, image.id, "pneumonia")
    assert first.created and not second.created
    assert second.label.label == "normal"
    assert db.session.execute(db.select(db.func.count(Label.id)).filter_by(image_id=image.id)).scalar_one() == 1


def test_unknown_class_and_missing_image_are_refused(trained_app):
    doctor = _user("doctor")
    image = queue.next_for(doctor)
    for image_id, label, status in [(image.id, "cancer", 400), (999_999, "normal", 404)]:
        try:
            queue.submit(doctor, image_id, label)
        except queue.LabelError as error:
            assert error.status == status
        else:
            raise AssertionError("submit accepted bad input")
    assert db.session.execute(db.select(db.func.count(Label.id))).scalar_one() == 0


def test_review_page_confirm_with_form(trained_client, csrf_off):
    login(trained_client, "doctor")
    page = trained_client.get("/review").get_data(as_text=True)
    assert "Confirm" in page and "model version" in page
    image = db.session.execute(db.select(Claim)).scalar_one()
    prediction = db.session.execute(db.select(Prediction).filter_by(image_id=image.image_id)).scalars().first()
    response = trained_client.post(
        f"/review/{image.image_id}",
        data={"label": prediction.predicted_class, "prediction_id": prediction.id, "time_spent_ms": "1500"},
    )
    assert response.status_code == 302
    label = db.session.execute(db.select(Label)).scalar_one()
    assert label.agreed is True and label.time_spent_ms == 1500


def test_empty_queue_says_so(trained_client, csrf_off):
    login(trained_client, "doctor")
    doctor = _user("doctor")
    while (image := queue.next_for(doctor)) is not None:
        queue.submit(doctor, image.id, "normal")
    assert "Nothing to review" in trained_client.get("/review").get_data(as_text=True)


def test_pool_without_scores_falls_back_to_confidence(trained_app):
    from webapp.inference import predictions

    db.session.execute(db.delete(QueryScore))  # nothing scored for this champion yet
    fresh = seed_pool(3, seed=55)
    for image_id in fresh:  # an upload predicts at once, before any scoring
        predictions.predict(db.session.get(Image, image_id))
    db.session.commit()
    confidence = {p.image_id: p.confidence for p in db.session.execute(db.select(Prediction)).scalars()}
    served = queue.next_for(_user("doctor"))
    assert served is not None
    assert confidence[served.id] == min(confidence.values())


def test_cold_start_serves_a_new_sites_typical_films_first(trained_app):
    from webapp import labelstore
    from webapp.inference import scoring

    new_site = seed_pool(6, seed=11)
    for image_id in new_site:
        db.session.get(Image, image_id).site = "hospital-b"
    db.session.commit()
    assert labelstore.training_films_per_site() == {"local": 40}  # the imported training films; none of hospital-b
    version = scoring.score()["version"]
    first = db.session.execute(
        db.select(QueryScore.image_id)
        .filter_by(model_version=version, strategy="cold_start")
        .order_by(QueryScore.rank)
        .limit(len(new_site))
    ).scalars()
    assert set(first) == set(new_site)
