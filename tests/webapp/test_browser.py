"""The pages in a real headless Chromium: the radiograph viewer (zoom, window/level, invert, heat
map), keyboard review, the assistant, and picking gold images from thumbnails.

Needs Debian's `chromium` and `chromium-driver` (`make test-browser` installs them); skipped,
with the reason, where they are missing. Screenshots of the review and gold pages are kept in
test-artefacts/screenshots/ ($MEDAL_SCREENSHOTS overrides); the fixtures are in tests/browser.py."""

import re
from collections import Counter

import pytest

from tests.browser import follow, log_in
from webapp.extensions import db
from webapp.models import GoldItem, Image, Label, Prediction

pytestmark = pytest.mark.browser


def _wait(browser):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 20)


def _scale(browser) -> float:
    transform = browser.execute_script("return document.getElementById('xray').style.transform")
    match = re.search(r"scale\(([\d.]+)\)", transform or "")
    return float(match.group(1)) if match else 1.0


def _filter(browser) -> str:
    return browser.execute_script("return document.getElementById('xray-image').style.filter")


def _page_errors(browser) -> list[str]:
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]
    ]


def _same_box(browser, first: str, second: str) -> bool:
    """Both elements' boxes read in one script run, so an animated zoom cannot fall between them."""
    return browser.execute_script(
        "const [a, b] = [arguments[0], arguments[1]].map(id => document.getElementById(id).getBoundingClientRect());"
        "const edges = r => [r.left, r.top, r.width, r.height];"
        "return edges(a).every((v, i) => Math.abs(v - edges(b)[i]) < 0.5);",
        first,
        second,
    )


def _box(browser, element_id):
    return browser.execute_script(
        "const r = document.getElementById(arguments[0]).getBoundingClientRect();"
        "return [r.left, r.top, r.width, r.height].map(v => Math.round(v * 10) / 10);",
        element_id,
    )


def test_doctor_reviews_with_the_keyboard_and_asks_the_assistant(browser, live_url, trained_app):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ready

    wait = _wait(browser)
    log_in(browser, live_url, "doctor")
    browser.get(f"{live_url}/review")
    heat = wait.until(ready.presence_of_element_located((By.ID, "heat")))
    assert not heat.is_displayed()  # off until asked for
    browser.find_element(By.TAG_NAME, "body").send_keys("h")
    wait.until(lambda d: heat.is_displayed())
    browser.find_element(By.ID, "heat-toggle").click()
    assert not heat.is_displayed()

    box = browser.find_element(By.ID, "chat-input")
    box.send_keys("How sure are you?", Keys.ENTER)
    answer = wait.until(lambda d: [m for m in d.find_elements(By.CSS_SELECTOR, ".chat .assistant")])
    assert "%" in answer[0].text and "does not replace the doctor" in answer[0].text

    browser.find_element(By.TAG_NAME, "body").send_keys("1")  # 1 = the first class: normal
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".flash.success")))
    with trained_app.app_context():
        label = db.session.execute(db.select(Label)).scalar_one()
        assert label.label == "normal" and label.user.username == "doctor"
        assert label.time_spent_ms is not None and label.time_spent_ms > 0
    recent = browser.find_element(By.ID, "recent-labels")  # the next page lists it
    assert f"#{label.image_id}" in recent.text
    assert wait.until(
        lambda d: d.execute_script(
            "const i = document.querySelector('#recent-labels img.thumb'); return i.complete && i.naturalWidth"
        )
    )


def test_viewer_zooms_levels_inverts_and_overlays_the_heat_map(browser, live_url, trained_app, screenshots):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    wait = _wait(browser)
    log_in(browser, live_url, "doctor")
    browser.get(f"{live_url}/review")
    stage = wait.until(lambda d: d.find_element(By.ID, "viewer-stage"))
    body = browser.find_element(By.TAG_NAME, "body")

    # the stored image at full resolution, as tall as most of the window
    image_id = int(
        re.search(r"/images/(\d+)\.png", browser.find_element(By.ID, "xray-image").get_attribute("src")).group(1)
    )
    with trained_app.app_context():
        stored = db.session.get(Image, image_id)
        width, height = stored.width, stored.height
    assert wait.until(
        lambda d: d.execute_script(
            "const i = document.getElementById('xray-image'); return i.complete && [i.naturalWidth, i.naturalHeight]"
        )
    ) == [width, height]
    assert stage.size["height"] >= 0.6 * browser.execute_script("return window.innerHeight")

    # wheel zooms in about the pointer; the X-ray and the heat map share one transformed frame
    assert _scale(browser) == 1.0
    ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(stage), 0, -300).perform()
    wait.until(lambda d: _scale(d) > 1.0)
    assert browser.find_element(By.ID, "zoom-level").text != "1.0×"
    body.send_keys("h")
    heat = browser.find_element(By.ID, "heat")
    wait.until(lambda d: heat.is_displayed() and d.execute_script("return arguments[0].naturalWidth", heat))
    assert _same_box(browser, "heat", "xray-image")
    zoomed = _scale(browser)
    body.send_keys("+")
    wait.until(lambda d: _scale(d) > zoomed)
    assert _same_box(browser, "heat", "xray-image")

    # the heat-map opacity slider, and its legend
    opacity = browser.find_element(By.ID, "heat-opacity")
    opacity.send_keys(Keys.ARROW_LEFT * 10)
    assert float(heat.value_of_css_property("opacity")) == pytest.approx(0.40)
    legend = browser.find_element(By.CSS_SELECTOR, "#heat-group .legend")
    assert legend.is_displayed() and "low" in legend.text and "high" in legend.text

    # window/level by the sliders and by Shift+drag (which must not pan)
    assert "contrast(1)" in _filter(browser)
    browser.find_element(By.ID, "wl-contrast").send_keys(Keys.ARROW_RIGHT * 20)
    assert "contrast(1.2)" in _filter(browser)
    browser.find_element(By.ID, "wl-brightness").send_keys(Keys.ARROW_LEFT * 10)
    assert "brightness(0.9)" in _filter(browser)
    transform = browser.execute_script("return document.getElementById('xray').style.transform")
    (
        ActionChains(browser)
        .move_to_element(stage)
        .key_down(Keys.SHIFT)
        .click_and_hold()
        .move_by_offset(30, -40)
        .release()
        .key_up(Keys.SHIFT)
        .perform()
    )
    assert "contrast(1.5)" in _filter(browser) and "brightness(1.1)" in _filter(browser)
    assert browser.execute_script("return document.getElementById('xray').style.transform") == transform

    # invert with I; the heat map is left alone by the grey-level filters
    body.send_keys("i")
    assert "invert(1)" in _filter(browser)
    assert browser.find_element(By.ID, "invert").get_attribute("aria-pressed") == "true"
    assert heat.value_of_css_property("filter") == "none"  # grey-level filters leave the heat map alone
    browser.save_screenshot(str(screenshots / "review-zoomed.png"))

    # R puts zoom, pan, window/level and invert back
    body.send_keys("r")
    wait.until(lambda d: _scale(d) == 1.0)
    assert _filter(browser) == "brightness(1) contrast(1)"
    assert heat.is_displayed()  # reset is about the view, not the overlay
    body.send_keys("h")
    assert not heat.is_displayed()
    browser.save_screenshot(str(screenshots / "review.png"))
    assert _page_errors(browser) == []  # no script error, nothing the CSP refused


def test_engineer_picks_gold_images_from_thumbnails(browser, live_url, trained_app, screenshots):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import Select

    wait = _wait(browser)
    log_in(browser, live_url, "engineer")
    browser.get(f"{live_url}/gold")
    picks = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#mark-form .pick"))
    assert len(picks) == 12  # the unlabeled pool
    assert wait.until(
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('.pick img.thumb')].every(i => i.complete && i.naturalWidth > 0)"
        )
    )
    browser.save_screenshot(str(screenshots / "gold.png"))
    assert _page_errors(browser) == []

    with trained_app.app_context():  # the class the champion predicts most often in the pool
        latest = {}
        for prediction in db.session.execute(db.select(Prediction).order_by(Prediction.id)).scalars():
            latest[prediction.image_id] = prediction.predicted_class
        pool = {i for i in db.session.execute(db.select(Image.id).filter_by(split="pool")).scalars()}
        common = Counter(latest[i] for i in pool).most_common(1)[0][0]
        expected = {i for i in pool if latest[i] == common}
    Select(browser.find_element(By.ID, "filter-predicted")).select_by_value(common)
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#gold-filters button"))
    assert f"predicted={common}" in browser.current_url
    assert {
        int(box.get_attribute("value")) for box in browser.find_elements(By.CSS_SELECTOR, "#mark-form .pick input")
    } == expected

    submit = browser.find_element(By.ID, "mark-picked")
    assert not submit.is_enabled()  # nothing ticked yet
    first, second = browser.find_elements(By.CSS_SELECTOR, "#mark-form .pick")[:2]
    first.click()  # the thumbnail ticks its box
    second.find_element(By.TAG_NAME, "input").click()
    assert browser.find_element(By.ID, "picked-count").text == "2 selected"
    chosen = [int(p.find_element(By.TAG_NAME, "input").get_attribute("value")) for p in (first, second)]
    submit.click()
    flash = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".flash.success")))
    assert "2 image(s) added" in flash.text
    assert f"predicted={common}" in browser.current_url  # the filters stay
    with trained_app.app_context():
        assert {item.image_id for item in db.session.execute(db.select(GoldItem)).scalars()} == set(chosen)
    shown = {
        int(p.find_element(By.TAG_NAME, "input").get_attribute("value"))
        for p in browser.find_elements(By.CSS_SELECTOR, "#mark-form .pick")
    }
    assert not shown & set(chosen)  # gold now: no longer a candidate
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.gold-items img.thumb")) == 2
