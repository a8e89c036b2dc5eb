"""The trust meter and activity pages in headless Chromium, with screenshots kept as artefacts
(test-artefacts/screenshots/trust.png and activity.png)."""

import pytest

from tests.browser import log_in
from tests.conftest import change_settings
from tests.webapp.monitoring import trust_seed as seed
from webapp.extensions import db

pytestmark = pytest.mark.browser


def _severe(browser) -> list[str]:
    return [
        e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]
    ]


def test_trust_and_activity_pages(trained_app, live_url, browser, screenshots):
    from selenium.webdriver.common.by import By

    change_settings(
        trained_app,
        {"trust": {"ready_for_less_supervision": {"normal": {"min_agreement": 0.8, "min_count": 40}}}},
    )
    for site, normal, pneumonia in (("north", (60, 58), (30, 24)), ("south", (12, 11), (8, 5))):
        seed.reviews(*normal, "normal", site=site, confidence=0.95, time_spent_ms=4200)
        seed.reviews(*pneumonia, "pneumonia", doctor="doctor2", site=site, time_spent_ms=6100)
    db.session.commit()
    log_in(browser, live_url, "engineer")
    browser.get(f"{live_url}/trust")
    text = browser.find_element(By.TAG_NAME, "main").text
    assert "Nothing is automated by this page" in text
    assert "ready" in text and "only 12 reviews of the 40 needed" in text
    browser.save_screenshot(str(screenshots / "trust.png"))
    browser.get(f"{live_url}/activity")
    chart = browser.find_element(By.CSS_SELECTOR, "img.chart")
    assert browser.execute_script("return arguments[0].naturalWidth", chart) > 0  # the SVG rendered under the CSP
    browser.save_screenshot(str(screenshots / "activity.png"))
    assert not _severe(browser)
