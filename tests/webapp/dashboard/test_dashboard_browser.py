"""The model dashboard in headless Chromium: two trained versions, a promotion and a rollback, the
charts loaded under the CSP; screenshots kept as dashboard.png and dashboard_compare.png."""

import pytest

from tests.browser import follow, log_in
from tests.conftest import user
from webapp.approvals import decisions

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_dashboard_in_chromium(candidate_app, live_url, browser, screenshots):
    from selenium.webdriver.common.by import By

    decisions.decide(2, user("engineer"), approve=True, reason="better on the gold set", override=True)
    decisions.rollback(user("engineer"), "misses on ward 3")
    log_in(browser, live_url, "engineer")
    browser.get(f"{live_url}/dashboard")
    images = browser.find_elements(By.CSS_SELECTOR, "main img")
    assert len(images) == 6  # overall, four per-class metrics, the learning curve
    # every chart decoded and drew: a refused or broken data: image has no natural width
    assert all(browser.execute_script("return arguments[0].naturalWidth", img) > 100 for img in images)
    # the dashboard sits in the nav's Models menu, marked as the current area
    menu = browser.find_element(By.CSS_SELECTOR, "header nav details.nav-menu.current")
    assert menu.find_element(By.TAG_NAME, "summary").text == "Models"
    assert menu.find_element(By.CSS_SELECTOR, 'a[aria-current="page"]').get_attribute("textContent") == "Dashboard"
    browser.set_window_size(1300, browser.execute_script("return document.body.scrollHeight") + 40)
    browser.save_screenshot(str(screenshots / "dashboard.png"))
    follow(browser, browser.find_element(By.CSS_SELECTOR, "form.compare button"))
    assert "on the gold set" in browser.find_element(By.TAG_NAME, "h1").text
    charts = browser.find_elements(By.CSS_SELECTOR, "main img")
    assert len(charts) >= 4 and all(browser.execute_script("return arguments[0].naturalWidth", c) > 100 for c in charts)
    browser.set_window_size(1300, browser.execute_script("return document.body.scrollHeight") + 40)
    browser.save_screenshot(str(screenshots / "dashboard_compare.png"))
    errors = [
        e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]
    ]
    assert errors == []
