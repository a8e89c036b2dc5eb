"""Who reads gold follows security.label_roles; adjudicators who do not label settle from the reads page."""

from tests.conftest import change_settings, csrf_token, login, seed_pool, user
from webapp.extensions import db
from webapp.gold import goldset
from webapp.models import GoldItem

CLASSES = ["normal", "pneumonia"]


def _marked(n: int = 2) -> list[int]:
    ids = seed_pool(n, seed=91)
    assert goldset.mark(ids, user("engineer")).added == ids
    return ids


def test_engineers_read_gold_when_label_roles_name_them(app, client):
    ids = _marked()
    change_settings(app, {"security": {"label_roles": ["doctor", "engineer"]}})
    login(client, "engineer")
    page = client.get("/gold/read")
    assert page.status_code == 200 and "independent read" in page.get_data(as_text=True)
    token = csrf_token(client, "/gold/read")
    saved = client.post(f"/gold/read/{ids[0]}", data={"csrf_token": token, "label": "normal"})
    assert saved.status_code == 302
    assert [read.user.username for read in goldset.reads(ids[0])] == ["engineer"]


def test_engineers_do_not_read_gold_by_default(app, client):
    ids = _marked()
    login(client, "engineer")
    assert client.get("/gold/read").status_code == 403
    token = csrf_token(client, "/gold")
    assert client.post(f"/gold/read/{ids[0]}", data={"csrf_token": token, "label": "normal"}).status_code == 403
    assert goldset.reads(ids[0]) == []


def test_an_admin_settles_disputes_on_the_reads_page_without_reading_blind(app, client):
    ids = _marked()
    goldset.record_read(user("doctor"), ids[0], "normal", CLASSES)
    goldset.record_read(user("doctor2"), ids[0], "pneumonia", CLASSES)
    login(client, "admin")  # an adjudicator, not in security.label_roles
    page = client.get("/gold/read").get_data(as_text=True)
    assert "Disputed gold images for you to settle (1)" in page and "your reading" not in page
    token = csrf_token(client, "/gold/read")
    decision = {"csrf_token": token, "label": "pneumonia", "next": "read"}
    settled = client.post(f"/gold/{ids[0]}/adjudicate", data=decision)
    assert settled.status_code == 302 and settled.location.endswith("/gold/read")
    assert db.session.get(GoldItem, ids[0]).final_label == "pneumonia"
    assert "No disputed gold image is waiting for you" in client.get("/gold/read").get_data(as_text=True)
