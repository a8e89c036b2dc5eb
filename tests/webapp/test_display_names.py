"""The pages a person reads name classes by their display names (set on /settings/classes): the gold
set, gold reads and adjudication, the trust meter, drift and the classes page itself. The values
sent back in forms stay the identifiers."""

from __future__ import annotations

import re

from tests.conftest import login, seed_pool, user
from tests.webapp.monitoring import trust_seed
from tests.webapp.monitoring.test_drift import drift_app  # noqa: F401 (a fixture)
from webapp.classes import catalog
from webapp.extensions import db
from webapp.gold import goldset
from webapp.models import LabelClass
from webapp.services import services

SHOWN = "Lung infection"  # pneumonia's display name in these tests: nothing else on a page reads so


def _rename_for_people() -> None:
    catalog.current(services().settings.class_names)  # a new database seeds its classes on first use
    db.session.get(LabelClass, "pneumonia").display = SHOWN
    db.session.commit()


def _page(app, username: str, path: str) -> str:
    client = app.test_client()
    login(client, username)
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def _class_buttons(page: str) -> dict[str, str]:
    return dict(re.findall(r'<button type="submit" name="label" value="([^"]+)">([^<]+)</button>', page))


def test_gold_pages_show_display_names_and_send_identifiers(trained_app):
    _rename_for_people()
    marked = seed_pool(2, seed=95)
    goldset.mark(marked, user("engineer"))
    classes = ["normal", "pneumonia"]

    gold = _page(trained_app, "engineer", "/gold")
    assert f'<option value="pneumonia" >{SHOWN}</option>' in gold  # the predicted-class filter

    reads = _page(trained_app, "doctor", "/gold/read")
    assert _class_buttons(reads) == {"normal": "Normal", "pneumonia": SHOWN}

    # two doctors disagree: the adjudicator reads both answers in display names and decides by them
    for image_id in marked:
        goldset.record_read(user("doctor"), image_id, "pneumonia", classes)
        goldset.record_read(user("doctor2"), image_id, "normal", classes)
    disputed = _page(trained_app, "admin", "/gold/read")
    assert f"doctor read <strong>{SHOWN}</strong>" in disputed and "doctor2 read <strong>Normal</strong>" in disputed
    assert _class_buttons(disputed) == {"normal": "Normal", "pneumonia": SHOWN}
    goldset.adjudicate(user("admin"), marked[0], "pneumonia", classes)
    final = _page(trained_app, "engineer", "/gold")
    assert re.search(rf"<td>#{marked[0]}</td><td>final</td><td>{SHOWN}</td>", final)


def test_the_trust_meter_names_classes_by_display_name(app):
    _rename_for_people()
    trust_seed.reviews(3, 2, "pneumonia")
    page = _page(app, "doctor", "/trust")
    assert f"<tr><td>{SHOWN}</td><td>3</td>" in page and "<td>pneumonia</td>" not in page


def test_the_classes_page_offers_classes_to_rename_by_both_names(app):
    _rename_for_people()
    page = _page(app, "engineer", "/settings/classes")
    assert f'<option value="pneumonia">{SHOWN} (pneumonia)</option>' in page


def test_drift_names_predicted_classes_by_display_name(drift_app):  # noqa: F811
    _rename_for_people()
    page = _page(drift_app, "engineer", "/drift")
    shares = re.findall(r"(\w[\w ]*?) \d+ %", page)
    assert SHOWN in shares and "pneumonia" not in shares
