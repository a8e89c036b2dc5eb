"""The engineer pages in headless Chromium at 1,024 x 768 and at the default width: the dashboard,
/history, Training (a running run with its curves and time left), a run's page, two runs compared,
and /approvals with the two models' charts and the flipped gold films. On every one the page does
not scroll sideways and the nav stays on one line. Screenshots: engineer-<page>-<width>.png."""

from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import follow, log_in
from webapp.extensions import db
from webapp.models import GateReport, TrainingRun, utcnow

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WIDTHS = (1024, 1300)
HISTORY = [
    {"epoch": 1, "train_loss": 0.93, "val_loss": 0.84, "val_auc": 0.61, "val_acc": 0.52},
    {"epoch": 2, "train_loss": 0.71, "val_loss": 0.73, "val_auc": 0.72, "val_acc": 0.63},
]


def fits(driver) -> None:
    """What a user at this width sees: no sideways scrolling, and the nav's entries on one line."""
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    tops = driver.execute_script(
        "return [...document.querySelectorAll('header nav > a, header nav > details > summary')]"
        ".map(e => Math.round(e.getBoundingClientRect().top))"
    )
    assert tops and len(set(tops)) == 1, tops
    assert driver.find_element(By.CSS_SELECTOR, "header.top").size["height"] < 60


def at_widths(driver, url: str, name: str, screenshots, check=None) -> None:
    for width in WIDTHS:
        driver.set_window_size(width, 768)
        driver.get(url)
        WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")
        fits(driver)
        if check:
            check(driver)
        if width != 1024:  # the whole page at the default width; the first screen at 1,024 x 768
            driver.set_window_size(width, driver.execute_script("return document.body.scrollHeight") + 40)
        driver.save_screenshot(str(screenshots / f"engineer-{name}-{width}.png"))


def drawn(driver, selector: str) -> list:
    """The charts under `selector`, each decoded by the browser (a refused image has no width)."""
    loaded = "return [...document.querySelectorAll(arguments[0])].every(i => i.complete)"
    WebDriverWait(driver, 20).until(lambda d: d.execute_script(loaded, selector))
    images = driver.find_elements(By.CSS_SELECTOR, selector)
    assert images and all(driver.execute_script("return arguments[0].naturalWidth", i) > 100 for i in images)
    return images


def flip_three_gold_films() -> None:
    """The gate's flipped list of the candidate's report, with real gold films (the tiny models may
    flip none by chance)."""
    report = db.session.execute(db.select(GateReport).filter_by(model_version=2)).scalar_one()
    gold = [image_id for image_id, _ in report.snapshot.items][:3]
    report.flipped = [
        {"image_id": gold[0], "gold": "pneumonia", "champion": "normal", "candidate": "pneumonia"},
        {"image_id": gold[1], "gold": "normal", "champion": "normal", "candidate": "pneumonia"},
        {"image_id": gold[2], "gold": "pneumonia", "champion": "pneumonia", "candidate": "normal"},
    ]
    db.session.commit()


def test_engineer_pages_at_1024_and_wide(candidate_app, live_url, browser, screenshots):
    flip_three_gold_films()
    running = TrainingRun(
        trigger="manual",
        status="running",
        started_at=utcnow() - timedelta(minutes=3),
        progress={
            "stage": "training",
            "epoch": 3,
            "max_epochs": 6,
            "step": 4,
            "steps": 8,
            "loss": 0.6,
            "elapsed_s": 144,
            "history": HISTORY,
        },
    )
    db.session.add(running)
    db.session.commit()
    log_in(browser, live_url, "engineer")

    def dashboard(driver):
        box = driver.find_element(By.CSS_SELECTOR, "#per-class").find_element(By.XPATH, "..")
        assert driver.execute_script("return getComputedStyle(arguments[0]).overflowX", box) == "auto"
        assert "Pneumonia" in driver.find_element(By.ID, "per-class").text  # the class's display name
        drawn(driver, "main .charts img")

    at_widths(browser, f"{live_url}/dashboard", "dashboard", screenshots, dashboard)

    def history(driver):
        headers = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#history thead th")]
        assert headers == ["When (UTC)", "Who", "What", "Model version", "Reason", "Details"]
        gate = driver.find_element(By.CSS_SELECTOR, "#history tr[data-kind=gate]")
        assert "Gold snapshot" in gate.text and "v2" in gate.text

    at_widths(browser, f"{live_url}/history", "history", screenshots, history)

    def training(driver):
        WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".live-curves img"))
        assert "about 3 min left" in driver.find_element(By.CSS_SELECTOR, "#active .eta").text
        drawn(driver, ".live-curves img")

    at_widths(browser, f"{live_url}/training", "training", screenshots, training)

    def run_page(driver):
        assert [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#epochs tr:nth-child(2) td")][:2] == [
            "1",
            "0.930",
        ]
        drawn(driver, ".run-curves img")

    at_widths(browser, f"{live_url}/training/runs/{running.id}", "training-run", screenshots, run_page)

    def compare(driver):
        assert "Validation AUC of the kept weights" in driver.find_element(By.ID, "side-by-side").text
        assert len(drawn(driver, ".run-curves img")) == 4

    browser.get(f"{live_url}/training")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "form.compare-runs button"))
    at_widths(browser, browser.current_url, "training-compare", screenshots, compare)

    def approvals(driver):
        assert len(drawn(driver, "#side-by-side img")) == 3  # overall, sensitivity and specificity per class
        films = driver.find_elements(By.CSS_SELECTOR, "#flipped figure")
        assert len(films) == 3
        driver.execute_script("arguments[0].scrollIntoView()", driver.find_element(By.ID, "flipped"))
        thumbs = "return [...document.querySelectorAll('#flipped img')].every(i => i.complete && i.naturalWidth > 0)"
        WebDriverWait(driver, 20).until(lambda d: d.execute_script(thumbs))  # lazy: loaded once in view
        first = films[0].text
        assert "gold Pneumonia" in first and "champion: Normal" in first and "candidate: Pneumonia" in first
        # captions stay inside their own figure: none runs into the next one
        boxes = [f.rect for f in films]
        for left, right in zip(boxes, boxes[1:]):
            if abs(left["y"] - right["y"]) < 1:
                assert left["x"] + left["width"] <= right["x"]
        captions = driver.execute_script(
            "return [...document.querySelectorAll('#flipped figcaption')].map(c => c.scrollWidth <= c.clientWidth)"
        )
        assert all(captions)

    at_widths(browser, f"{live_url}/approvals", "approvals", screenshots, approvals)
    errors = [
        e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]
    ]
    assert errors == []


def test_the_admins_nav_groups_the_engineer_pages_in_menus(candidate_app, live_url, browser, screenshots):
    log_in(browser, live_url, "admin")
    browser.set_window_size(1024, 768)
    browser.get(f"{live_url}/dashboard")
    fits(browser)
    menu = browser.find_element(By.CSS_SELECTOR, "header details.nav-menu.current")
    assert menu.find_element(By.TAG_NAME, "summary").text == "Models"
    menu.find_element(By.TAG_NAME, "summary").click()
    links = [a.text for a in menu.find_elements(By.CSS_SELECTOR, ".nav-items a")]
    assert links[:4] == ["Dashboard", "Training", "Approvals", "History"]
    browser.save_screenshot(str(screenshots / "engineer-nav-open-1024.png"))
    browser.find_element(By.TAG_NAME, "h1").click()  # a click elsewhere closes it
    assert not menu.get_attribute("open")
    menu.find_element(By.TAG_NAME, "summary").click()
    follow(browser, menu.find_element(By.LINK_TEXT, "Training"))
    assert browser.current_url.endswith("/training") and browser.find_element(By.TAG_NAME, "h1").text == "Training"
