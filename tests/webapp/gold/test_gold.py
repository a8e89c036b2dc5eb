"""Gold set: marking, two independent reads, adjudication, exclusion from queue and training."""

import pytest

from tests.conftest import csrf_token, login, seed_pool
from webapp import labelstore
from webapp.approvals import gate_run
from webapp.extensions import db
from webapp.gold import goldset
from webapp.models import GoldItem, Image, Label, User
from webapp.review import queue
from webapp.training import runs

CLASSES = ["normal", "pneumonia"]


def _user(name):
    return db.session.execute(db.select(User).filter_by(username=name)).scalar_one()


def _read(name, image_id, label):
    return goldset.record_read(_user(name), image_id, label, CLASSES)


@pytest.fixture
def marked(trained_app):
    ids = seed_pool(3, seed=91)
    result = goldset.mark(ids, _user("engineer"))
    assert result.added == ids
    return ids


def test_marked_images_leave_the_queue_and_training(trained_app, marked):
    served = set()
    doctor = _user("doctor")
    while (image := queue.next_for(doctor)) is not None:
        served.add(image.id)
        queue.submit(doctor, image.id, "normal")
    assert served and not served & set(marked)
    examples, _ = runs.training_set(trained_app.extensions["medal"].settings)
    assert not {e.image_id for e in examples} & set(marked)


def test_images_seen_in_training_or_review_cannot_become_gold(trained_app):
    trained = db.session.execute(db.select(Image.id).filter_by(split="train").limit(1)).scalar_one()
    pool = seed_pool(2, seed=92)
    queue.submit(_user("doctor"), pool[0], "normal")
    result = goldset.mark([trained, pool[0], pool[1], pool[1], 9999], _user("engineer"))
    assert result.added == [pool[1]]
    assert set(result.refused) == {trained, pool[0], 9999}
    assert not db.session.get(Image, trained).is_gold and db.session.get(GoldItem, pool[0]) is None
    assert goldset.mark([pool[1]], _user("engineer")).already == [pool[1]]


def test_two_agreeing_reads_make_a_final_label(trained_app, marked):
    first = goldset.next_read(_user("doctor"))
    _read("doctor", first.image_id, "pneumonia")
    assert db.session.get(GoldItem, first.image_id).status == "pending"
    with pytest.raises(goldset.GoldError):
        _read("doctor", first.image_id, "pneumonia")  # not independent
    assert goldset.next_read(_user("doctor")).image_id != first.image_id
    _read("doctor2", first.image_id, "pneumonia")
    item = db.session.get(GoldItem, first.image_id)
    assert (item.status, item.final_label) == ("final", "pneumonia")
    assert first.image_id in {e.image_id for e in labelstore.gold_examples(trained_app.extensions["medal"].store)}


def test_gold_reads_are_blind_and_never_count_as_agreement(trained_app, marked):
    before = gate_run.recent_agreement()
    for name in ("doctor", "doctor2"):
        _read(name, marked[0], "normal")
    reads = db.session.execute(db.select(Label).filter_by(image_id=marked[0])).scalars().all()
    assert len(reads) == 2 and all(r.prediction_id is None and r.agreed is None for r in reads)
    assert gate_run.recent_agreement() == before
    with pytest.raises(goldset.GoldError) as caught:
        goldset.next_read(_user("engineer"))  # reads come from doctors
    assert caught.value.status == 403
    with pytest.raises(goldset.GoldError):
        _read("doctor", marked[1], "not-a-class")


def test_disagreement_goes_to_an_adjudicator_who_did_not_read_it(trained_app, marked):
    image_id = marked[0]
    _read("doctor", image_id, "normal")
    _read("doctor2", image_id, "pneumonia")
    assert db.session.get(GoldItem, image_id).status == "disputed"
    with pytest.raises(goldset.GoldError) as caught:
        goldset.adjudicate(_user("doctor"), image_id, "normal", CLASSES)
    assert caught.value.status == 403
    reader = _user("doctor2")
    reader.can_adjudicate = True
    db.session.commit()
    assert goldset.disputed_for(reader) == []
    with pytest.raises(goldset.GoldError) as caught:
        goldset.adjudicate(reader, image_id, "pneumonia", CLASSES)  # one of the two readers
    assert caught.value.status == 403
    assert [i.image_id for i in goldset.disputed_for(_user("admin"))] == [image_id]
    item = goldset.adjudicate(_user("admin"), image_id, "pneumonia", CLASSES)
    assert (item.status, item.final_label, item.adjudicated_by_id) == ("final", "pneumonia", _user("admin").id)
    with pytest.raises(goldset.GoldError):
        goldset.adjudicate(_user("admin"), image_id, "normal", CLASSES)  # settled once


def test_gold_pages(trained_app, marked):
    client = trained_app.test_client()
    login(client, "doctor")
    page = client.get("/gold/read").get_data(as_text=True)
    assert "independent read" in page and "Model says" not in page and "%" not in page
    token = csrf_token(client, "/gold/read")
    client.post(f"/gold/read/{marked[0]}", data={"csrf_token": token, "label": "normal"})
    assert [r.label for r in goldset.reads(marked[0])] == ["normal"]
    assert client.get("/gold").status_code == 403
    login(client, "engineer")
    assert client.get("/gold/read").status_code == 403
    pool = seed_pool(2, seed=93)
    token = csrf_token(client, "/gold")
    response = client.post("/gold/mark", data={"csrf_token": token, "image_ids": f"{pool[0]}, {pool[1]}"})
    assert response.status_code == 302
    assert db.session.get(GoldItem, pool[0]) is not None
    assert "pending" in client.get("/gold").get_data(as_text=True)


def test_adjudicator_settles_from_the_reads_page(trained_app, marked):
    _read("doctor", marked[0], "normal")
    _read("doctor2", marked[0], "pneumonia")
    client = trained_app.test_client()
    login(client, "admin")  # not a labeler (security.label_roles): admins settle from the gold page
    page = client.get("/gold").get_data(as_text=True)
    assert "Decide:" in page
    token = csrf_token(client, "/gold")
    response = client.post(f"/gold/{marked[0]}/adjudicate", data={"csrf_token": token, "label": "pneumonia"})
    assert response.status_code == 302 and response.location.endswith("/gold")
    assert db.session.get(GoldItem, marked[0]).final_label == "pneumonia"
