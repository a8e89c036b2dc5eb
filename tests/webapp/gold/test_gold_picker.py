"""The gold-set page: engineers pick candidates from thumbnails, filtered by class, site and review."""

import re

from tests.conftest import csrf_token, login, seed_pool
from webapp.extensions import db
from webapp.gold.pool import PAGE_SIZE
from webapp.models import GoldItem, Image, Prediction, User
from webapp.review import queue


def _shown(client, query: str = "") -> dict[int, bool]:
    """Candidate image id -> pickable, as the page lists them."""
    page = client.get(f"/gold{query}").get_data(as_text=True)
    boxes = re.findall(r'<input type="checkbox" name="image_ids" value="(\d+)"( disabled)?', page)
    return {int(image_id): not disabled for image_id, disabled in boxes}


def _latest_class(image_id: int) -> str:
    return db.session.execute(
        db.select(Prediction.predicted_class).filter_by(image_id=image_id).order_by(Prediction.id.desc()).limit(1)
    ).scalar_one()


def test_candidates_are_the_images_mark_would_accept(trained_app):
    client = trained_app.test_client()
    login(client, "engineer")
    pool = db.session.execute(db.select(Image.id).filter_by(split="pool")).scalars().all()
    doctor = db.session.execute(db.select(User).filter_by(username="doctor")).scalar_one()
    reviewed = pool[0]
    queue.submit(doctor, reviewed, "normal")

    shown = _shown(client)
    assert set(shown) == set(pool) - {reviewed} and all(shown.values())  # training images never appear
    page = client.get("/gold").get_data(as_text=True)
    assert page.count('class="thumb"') >= len(shown) and 'loading="lazy"' in page
    everything = _shown(client, "?show=all")  # reviewed: shown, not pickable
    assert set(everything) == set(pool) and everything[reviewed] is False

    by_class = {name: {i for i in shown if _latest_class(i) == name} for name in ("normal", "pneumonia")}
    for name, expected in by_class.items():
        assert set(_shown(client, f"?predicted={name}")) == expected


def test_site_filter_and_ticked_boxes_mark_gold(trained_app):
    client = trained_app.test_client()
    login(client, "engineer")
    ids = seed_pool(3, seed=95)
    db.session.get(Image, ids[0]).site = "St Mary"
    db.session.get(Image, ids[1]).site = "Royal Free"
    db.session.get(Image, ids[2]).site = None
    db.session.commit()
    assert set(_shown(client, "?site=St+Mary")) == {ids[0]}
    assert ids[2] in _shown(client, "?site=-") and ids[0] not in _shown(client, "?site=-")  # no site recorded
    page = client.get("/gold").get_data(as_text=True)
    assert ">St Mary</option>" in page and ">Royal Free</option>" in page

    token = csrf_token(client, "/gold")
    # two ticked thumbnails, the empty typed field, and the filters to come back to
    response = client.post(
        "/gold/mark", data={"csrf_token": token, "image_ids": [str(ids[0]), str(ids[1]), ""], "site": "St Mary"}
    )
    assert response.status_code == 302 and "site=St+Mary" in response.location
    assert db.session.get(GoldItem, ids[0]) is not None and db.session.get(GoldItem, ids[1]) is not None
    assert db.session.get(GoldItem, ids[2]) is None
    assert not set(_shown(client)) & {ids[0], ids[1]}  # gold now, no longer a candidate
    gold_list = client.get("/gold").get_data(as_text=True).split('class="gold-items"')[1]
    assert f"/images/{ids[0]}/thumbnail.png" in gold_list

    response = client.post("/gold/mark", data={"csrf_token": token}, follow_redirects=True)
    assert "Tick images, or give image ids" in response.get_data(as_text=True)


def test_candidates_come_a_page_at_a_time(trained_app):
    client = trained_app.test_client()
    login(client, "engineer")
    seed_pool(PAGE_SIZE - 12 + 3, seed=96)  # PAGE_SIZE + 3 candidates in all
    first, second = _shown(client), _shown(client, "?page=2")
    assert len(first) == PAGE_SIZE and len(second) == 3 and not set(first) & set(second)
    page = client.get("/gold").get_data(as_text=True)
    assert "page 1 of 2" in page and "page=2" in page
