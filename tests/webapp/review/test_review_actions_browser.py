"""Skip, unsure, comment, findings and impression on the review page in headless Chromium, driven from the
keyboard: S skips (the next image is served; the skipped one goes to another doctor, never back), C
focuses the comment and typing there triggers nothing, Esc hands the keys back, U marks unsure and a
class key saves. Screenshots: review_actions.png, review_unsure.png, review_label_details.png,
review_skipped_before.png, gold_unsure.png, activity_skips.png."""

from __future__ import annotations

import re

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import log_in
from webapp import labelstore
from webapp.extensions import db
from webapp.models import Label
from webapp.services import services

pytestmark = pytest.mark.browser

COMMENT = "Ask for a lateral; compare with the last film."  # holds s, u and c: none may act as a key
FINDINGS = "Patchy opacity at the right base."
IMPRESSION = "Right basal pneumonia, or atelectasis."


def _served(browser) -> int:
    action = browser.find_element(By.ID, "label-form").get_attribute("action")
    return int(re.search(r"/review/(\d+)$", action).group(1))


def _press(browser, keys: str, leaves: bool = False) -> None:
    """Type into whatever has focus; when the keys submit a form, wait for the next page."""
    page = browser.find_element(By.TAG_NAME, "html")
    ActionChains(browser).send_keys(keys).perform()
    if leaves:
        WebDriverWait(browser, 20).until(ready.staleness_of(page))
        WebDriverWait(browser, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")


def _full_page(browser, path) -> None:
    browser.execute_script("window.scrollTo(0, 0)")
    browser.set_window_size(1300, browser.execute_script("return document.body.scrollHeight") + 40)
    browser.save_screenshot(str(path))
    browser.set_window_size(1300, 1000)


def _flash(browser) -> str:
    return " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, ".flash, .flashes li, [role=status]"))


def _as(browser, live_url, username: str) -> None:
    browser.delete_all_cookies()
    log_in(browser, live_url, username)


def test_review_actions_from_the_keyboard(trained_app, browser, live_url, screenshots):
    log_in(browser, live_url, "doctor")
    browser.get(f"{live_url}/review")
    skipped = _served(browser)
    keys_help = browser.find_element(By.CSS_SELECTOR, "#label-form p.muted:last-of-type").text
    assert all(f" {word}" in keys_help for word in ("unsure", "skips", "comment")), keys_help
    _full_page(browser, screenshots / "review_actions.png")

    _press(browser, "s", leaves=True)  # skip: the next image, and it says so
    reading = _served(browser)
    assert reading != skipped
    assert f"Skipped image {skipped}" in browser.find_element(By.TAG_NAME, "main").text
    assert browser.find_element(By.ID, "your-skips").text == "you skipped 1"

    _press(browser, "c")
    assert browser.switch_to.active_element.get_attribute("id") == "comment"
    _press(browser, COMMENT)  # the keys typed here stay text
    assert _served(browser) == reading and not browser.find_element(By.ID, "unsure").is_selected()
    _press(browser, Keys.ESCAPE)
    assert browser.switch_to.active_element.get_attribute("id") != "comment"
    browser.find_element(By.ID, "findings").send_keys(FINDINGS)
    browser.find_element(By.ID, "impression").send_keys(IMPRESSION)
    _press(browser, Keys.ESCAPE)
    assert not browser.find_element(By.CSS_SELECTOR, ".unsure-note").is_displayed()
    _press(browser, "u")
    assert browser.find_element(By.ID, "unsure").is_selected()
    assert browser.find_element(By.CSS_SELECTOR, ".unsure-note").is_displayed()
    assert browser.find_element(By.ID, "confirm").text.startswith("Lean to ")
    _full_page(browser, screenshots / "review_unsure.png")
    _press(browser, "1", leaves=True)  # the class leant to
    assert "Saved as unsure" in browser.find_element(By.TAG_NAME, "main").text

    db.session.rollback()  # read what the server committed
    label = db.session.execute(db.select(Label).filter_by(image_id=reading)).scalar_one()
    first_class = services().class_names[0]
    assert (label.unsure, label.label, label.agreed) == (True, first_class, None)
    assert (label.findings, label.impression, label.comment) == (FINDINGS, IMPRESSION, COMMENT)
    trained = labelstore.doctor_examples(services().store, services().class_names)
    assert reading not in {example.image_id for example in trained}
    assert _served(browser) not in (skipped, reading)  # the skipped image never comes back

    browser.get(f"{live_url}/predictions/{label.prediction_id}")
    details = browser.find_element(By.ID, "my-label").text
    assert "unsure" in details and all(text in details for text in (FINDINGS, IMPRESSION, COMMENT))
    _full_page(browser, screenshots / "review_label_details.png")

    _as(browser, live_url, "doctor2")
    browser.get(f"{live_url}/review")
    assert _served(browser) == skipped  # back in the queue for someone else
    assert browser.find_element(By.ID, "skipped-before").text == "skipped by 1 doctor"
    _full_page(browser, screenshots / "review_skipped_before.png")

    _as(browser, live_url, "engineer")
    browser.get(f"{live_url}/gold?show=unsure")
    assert "1 unsure" in browser.find_element(By.ID, "unsure-studies").text
    offered = browser.find_elements(By.CSS_SELECTOR, ".pick-grid input[name=image_ids]")
    assert [box.get_attribute("value") for box in offered] == [str(reading)]
    assert offered[0].is_enabled()  # it can be marked gold: blind reads and adjudication settle it
    _full_page(browser, screenshots / "gold_unsure.png")
    browser.get(f"{live_url}/activity")
    assert browser.find_element(By.ID, "skips-total").text == "1"
    _full_page(browser, screenshots / "activity_skips.png")
    errors = [
        e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]
    ]
    assert errors == []
