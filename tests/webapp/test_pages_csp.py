"""Every page renders under the Content-Security-Policy without 'unsafe-inline' for styles: a real
Chromium opens each page a role may open and reports no refusal (an inline style, a script) and no
script error; the class bars keep their widths with no inline style."""

import pytest

from tests.browser import log_in
from webapp.auth import access
from webapp.classes import catalog
from webapp.extensions import db
from webapp.models import Prediction, User

pytestmark = pytest.mark.browser

# pages that are not HTML (files, the scrape) or that end the session
NOT_PAGES = {"static", "auth.logout", "auth.health", "monitoring.metrics", "api-docs.openapi_json"}


# two versions compared: tests/webapp/dashboard/test_dashboard_browser.py opens it from the dashboard
NEEDS_TWO_MODELS = {"dashboard.compare"}


def _pages(app) -> list[str]:
    """Every page without URL arguments, as its path."""
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or ())
        and not rule.arguments
        and not access.is_api(rule.endpoint)
        and rule.endpoint not in NOT_PAGES | NEEDS_TWO_MODELS
    )


def _refusals(browser) -> list[str]:
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if (entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"])
        and "favicon.ico" not in entry["message"]
    ]


@pytest.mark.parametrize("role", ["doctor", "engineer", "admin"])
def test_every_page_renders_without_a_csp_refusal(browser, live_url, trained_app, role):
    from selenium.webdriver.common.by import By

    with trained_app.app_context():
        prediction = db.session.execute(db.select(Prediction).limit(1)).scalar_one()
        prediction_id, probabilities = prediction.id, dict(prediction.probabilities)
        shown = {name: catalog.display(name) for name in probabilities}  # the bars name classes as people do
        who = db.session.execute(db.select(User).filter_by(username=role)).scalar_one()
        pages = [
            path for path in _pages(trained_app) if access.allows(access.ACCESS[_endpoint(trained_app, path)], who)
        ]
    log_in(browser, live_url, role)
    browser.get_log("browser")  # the log-in page's entries
    opened, refused = [], {}
    for path in [*pages, f"/predictions/{prediction_id}"]:
        browser.get(f"{live_url}{path}")
        opened.append(path)
        found = _refusals(browser)
        if found:
            refused[path] = found
    assert len(opened) >= 6 and not refused, refused

    # the last page is the prediction's: each class's bar is as long as its probability
    widths = {
        row.find_element(By.CSS_SELECTOR, "span").text: float(
            row.find_element(By.CSS_SELECTOR, "rect").get_attribute("width")
        )
        for row in browser.find_elements(By.CSS_SELECTOR, ".bars li")
    }
    assert widths == pytest.approx({shown[name]: round(p * 100, 1) for name, p in probabilities.items()}, abs=0.051)
    bar = browser.find_element(By.CSS_SELECTOR, ".bars li:first-child .bar")  # the likeliest class (top or in doubt)
    rect = bar.find_element(By.CSS_SELECTOR, "rect")
    top = max(probabilities.values())
    assert rect.rect["width"] == pytest.approx(bar.rect["width"] * top, abs=1.5)


def _endpoint(app, path: str) -> str:
    return next(rule.endpoint for rule in app.url_map.iter_rules() if rule.rule == path)
