"""/history as a table a person reads: when, who, what, model version, reason, and the details as
sentences with class display names, not `key: value` dumps; the ?kind= filter still narrows it."""

import re

from tests.conftest import login, user
from webapp import audit
from webapp.auth.tokens import create_token
from webapp.extensions import db


def rows(page: str) -> list[str]:
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", "<tr" + row)).strip() for row in body.split("<tr")[1:]]


def test_history_reads_as_a_table_of_sentences(app, gated):
    doctor = user("doctor")
    audit.record(
        audit.Kind.LABEL,
        doctor,
        details={
            "image_id": 7,
            "label_id": 3,
            "label": "pneumonia",
            "channel": "web",
            "prediction_id": 5,
            "agreed": False,
        },
    )
    audit.record(
        audit.Kind.CLASS, user("admin"), reason="class covid_19 added", details={"action": "add", "class": "covid_19"}
    )
    db.session.commit()
    create_token(user("engineer"), name="ward scanner", actor=user("admin"))
    client = app.test_client()
    login(client, "engineer")
    page = client.get("/history").get_data(as_text=True)
    headers = re.findall(r"<th[^>]*>([^<]+)</th>", page.split('id="history"', 1)[1])
    assert headers == ["When (UTC)", "Who", "What", "Model version", "Reason", "Details"]
    found = rows(page)
    assert any(
        r.startswith(tuple("0123456789"))
        and "doctor Label" in r
        and "Image #7 labelled Pneumonia: corrected the model" in r
        for r in found
    )
    assert any("Class change" in r and "Added Covid 19 (covid_19)" in r for r in found)
    assert any("Token created" in r and "Token “ward scanner”" in r and "of engineer, valid until" in r for r in found)
    gate = next(r for r in found if r.split(" ", 3)[3].startswith("Gate run"))
    assert "v2 against champion v1" in gate and "Gold snapshot" in gate and "images" in gate
    assert "image_id:" not in page and "label_id" not in page and "gold_size" not in page


def test_the_kind_filter_still_narrows_the_table(app, gated):
    audit.record(audit.Kind.LABEL, user("doctor"), details={"image_id": 7, "label": "normal", "gold": "adjudicated"})
    db.session.commit()
    client = app.test_client()
    login(client, "engineer")
    found = rows(client.get("/history?kind=label").get_data(as_text=True))
    assert len(found) == 1 and "Image #7: gold label Normal, settled by an adjudicator" in found[0]
    assert client.get("/history?kind=gossip").status_code == 400


def test_details_of_an_unexpected_shape_still_read_as_words(app):
    event = audit.record(audit.Kind.RECOVERY, None, details={"worker_pid": 12, "odd": {"a_b": 1}, "flag": True})
    from webapp.approvals.history import details_text

    assert details_text(event) == "worker pid: 12 · odd: a b 1 · flag: yes"
