"""The upload page in headless Chromium: a film sent twice is said to be already in medal, with a link
to the study and the fields kept; screenshot kept as upload_already.png."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests import synthetic
from tests.browser import log_in

pytestmark = pytest.mark.browser


def _send(browser, path, site: str) -> None:
    field = browser.find_element(By.ID, "site")
    field.clear()
    field.send_keys(site)
    browser.find_element(By.ID, "picker").send_keys(str(path))


def test_the_upload_page_says_a_film_is_already_in_medal(trained_app, browser, live_url, screenshots, tmp_path):
    film = tmp_path / "chest.png"
    film.write_bytes(synthetic.png_bytes(synthetic.radiograph(1, seed=4242)))
    log_in(browser, live_url, "doctor")
    browser.get(f"{live_url}/upload")
    _send(browser, film, "north")
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results tbody tr td a"))
    assert not browser.find_elements(By.CSS_SELECTOR, "tr.already")  # a new film: no notice

    _send(browser, film, "south")
    notice = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.already"))[0]
    link = notice.find_element(By.TAG_NAME, "a")
    study = link.text.removeprefix("study #")
    assert notice.text.startswith(f"This film is already in medal as study #{study}.")
    assert "Kept site 'north' (you typed 'south')." in notice.text
    assert "/predictions/" in link.get_attribute("href")
    browser.save_screenshot(str(screenshots / "upload_already.png"))
    errors = [
        e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]
    ]
    assert errors == []
    link.click()
    wait.until(lambda d: "/predictions/" in d.current_url)
    assert f"image {study}" in browser.find_element(By.TAG_NAME, "h1").text
