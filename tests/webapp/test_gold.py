"""Gold set: marking, two independent reads, adjudication, exclusion from queue and training."""
import pytest

from tests.conftest import csrf_token, login, seed_pool
from webapp import finetune, gold, labelstore, reviewqueue
from webapp.extensions import db
from webapp.models import GoldItem, User


def _user(name):
    return db.session.execute(db.select(User).filter_by(username=name)).scalar_one()


@pytest.fixture
def marked(trained_app):
    ids = seed_pool(3, seed=91)
    gold.mark(ids, _user("engineer"))
    return ids


def test_marked_images_leave_the_queue_and_training(trained_app, marked):
    served = set()
    doctor = _user("doctor")
    while (image := reviewqueue.next_for(doctor)) is not None:
        served.add(image.id)
        reviewqueue.submit(doctor, image.id, "normal")
    assert served and not served & set(marked)
    examples, _ = finetune.training_set(trained_app.config["MEDAL"])
    assert not {e.image_id for e in examples} & set(marked)


def test_two_agreeing_reads_make_a_final_label(trained_app, marked):
    first = gold.next_read(_user("doctor"))
    gold.record_read(_user("doctor"), first.image_id, "pneumonia")
    assert db.session.get(GoldItem, first.image_id).status == "pending"
    with pytest.raises(gold.GoldError):
        gold.record_read(_user("doctor"), first.image_id, "pneumonia")  # not independent
    assert gold.next_read(_user("doctor")).image_id != first.image_id
    gold.record_read(_user("doctor2"), first.image_id, "pneumonia")
    item = db.session.get(GoldItem, first.image_id)
    assert (item.status, item.final_label) == ("final", "pneumonia")
    assert first.image_id in {e.image_id for e in labelstore.gold_examples(trained_app.extensions["medal"].store)}


def test_disagreement_goes_to_an_adjudicator(trained_app, marked):
    image_id = marked[0]
    gold.record_read(_user("doctor"), image_id, "normal")
    gold.record_read(_user("doctor2"), image_id, "pneumonia")
    assert db.session.get(GoldItem, image_id).status == "disputed"
    with pytest.raises(gold.GoldError) as caught:
        gold.adjudicate(_user("doctor"), image_id, "normal", ["normal", "pneumonia"])
    assert caught.value.status == 403
    item = gold.adjudicate(_user("admin"), image_id, "pneumonia", ["normal", "pneumonia"])
    assert (item.status, item.final_label, item.adjudicated_by_id) == ("final", "pneumonia", _user("admin").id)


def test_gold_pages(trained_app, marked):
    client = trained_app.test_client()
    login(client, "doctor")
    page = client.get("/gold/read").get_data(as_text=True)
    assert "independent read" in page and "Model says" not in page
    login(client, "engineer")
    token = csrf_token(client, "/gold")
    response = client.post("/gold/mark", data={"csrf_token": token, "image_ids": "1, 2"})
    assert response.status_code == 302
    assert db.session.get(GoldItem, 1) is not None
    assert "pending" in client.get("/gold").get_data(as_text=True)
