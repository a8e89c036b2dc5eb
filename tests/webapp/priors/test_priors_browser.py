"""Prior studies in headless Chromium: the strip on the review and prediction pages and the side-by-side
view it opens, under the CSP; screenshots kept as review_priors.png, prediction_priors.png and
compare_priors.png."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from selenium.webdriver.common.by import By

from tests.browser import follow, log_in
from tests.conftest import user
from webapp.extensions import db
from webapp.inference import predictions
from webapp.models import Image, Label

pytestmark = pytest.mark.browser

KEY = "p-" + "b" * 32  # one patient's pseudonym, as an upload with a patient id stores it


def _one_patient_pool() -> None:
    """The 12 pool images become one patient's studies a month apart, each predicted; two are labeled,
    so whichever the queue serves has 11 others (10 shown, "and 1 more")."""
    pool = db.session.execute(db.select(Image).filter_by(split="pool").order_by(Image.id)).scalars().all()
    for months, image in enumerate(pool):
        image.patient_key = KEY
        image.created_at = datetime(2024, 1, 10, 8, 15) + timedelta(days=30 * months)
        predictions.predict(image)
    doctor = user("doctor2")
    # two in the middle: among the ten shown whichever image is served
    db.session.add(Label(image_id=pool[5].id, user_id=doctor.id, label="pneumonia", channel="api"))
    db.session.add(Label(image_id=pool[6].id, user_id=doctor.id, label="normal", channel="api"))
    db.session.commit()


def _loaded(browser, img) -> bool:
    return browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)


def _refusals(browser) -> list[str]:
    return [
        e["message"]
        for e in browser.get_log("browser")
        if (e["level"] == "SEVERE" or "Content Security Policy" in e["message"]) and "favicon" not in e["message"]
    ]


def test_priors_on_the_reading_pages_and_side_by_side(trained_app, browser, live_url, screenshots):
    _one_patient_pool()
    log_in(browser, live_url, "doctor")
    browser.get(f"{live_url}/review")
    strip = browser.find_element(By.ID, "priors")
    figures = strip.find_elements(By.CSS_SELECTOR, "figure")
    assert len(figures) == 10 and "and 1 more, older" in strip.text
    assert "Patient's other studies (11)" in strip.text
    text = [f.get_attribute("textContent") for f in figures]  # those scrolled out of the strip too
    dates = [t.strip()[:10] for t in text]
    assert dates == sorted(dates)  # earlier first
    assert any("Pneumonia" in t for t in text) and all("model: " in t for t in text)
    assert KEY not in browser.page_source
    assert _loaded(browser, figures[0].find_element(By.TAG_NAME, "img"))
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", strip)
    browser.save_screenshot(str(screenshots / "review_priors.png"))
    served = int(browser.find_element(By.CSS_SELECTOR, "h1").text.split()[2])
    prediction_id = browser.find_element(By.NAME, "prediction_id").get_attribute("value")

    labeled, caption = next((f, t) for f, t in zip(figures, text) if "Pneumonia" in t)
    later = "later" in caption
    follow(browser, labeled.find_element(By.TAG_NAME, "a"))
    assert f"/images/{served}/compare/" in browser.current_url
    films = browser.find_elements(By.CSS_SELECTOR, ".compare-film img")
    assert len(films) == 2 and all(_loaded(browser, film) for film in films)
    left, right = browser.find_elements(By.CSS_SELECTOR, ".compare-panel")
    assert left.rect["y"] == right.rect["y"] and left.rect["x"] < right.rect["x"]  # side by side
    assert f"This study · study #{served}" in left.text
    assert ("Later study" if later else "Earlier study") in right.text
    assert "Final label: Pneumonia" in right.text
    assert browser.find_elements(By.CSS_SELECTOR, "#priors figure.compared")
    browser.save_screenshot(str(screenshots / "compare_priors.png"))

    browser.get(f"{live_url}/predictions/{prediction_id}")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#priors figure")) == 10
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", browser.find_element(By.ID, "priors"))
    browser.save_screenshot(str(screenshots / "prediction_priors.png"))
    assert not _refusals(browser)
