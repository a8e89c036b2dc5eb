"""Headless Chromium fixtures shared by the browser tests (registered in tests/conftest.py).

`browser` is Debian's chromium driven by chromium-driver (skipped, with the reason, where they are
missing); `live_url` serves the trained test app on a free port; `log_in` signs a user in;
`screenshots` is the folder where tests keep their screenshots as artefacts:
test-artefacts/screenshots/ at the repository root, or $MEDAL_SCREENSHOTS."""

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from werkzeug.serving import make_server

# read at import: the app fixtures clear every MEDAL_* variable before a test runs
SCREENSHOTS = os.environ.get("MEDAL_SCREENSHOTS")
ARTEFACTS = Path(__file__).resolve().parent.parent / "test-artefacts"


@pytest.fixture
def browser():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("chromium and chromium-driver are not installed (make test-browser installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1300,1000",
    ):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # script errors, CSP refusals
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


@contextmanager
def serving(app) -> Iterator[str]:
    """Serve `app` over real HTTP on a free local port for the block; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.fixture
def live_url(trained_app):
    with serving(trained_app) as url:
        yield url


def log_in(driver, base_url: str, username: str) -> None:
    """Sign in through the login form and wait until the app has landed on the next page, so that a
    following driver.get cannot overtake the sign-in's own navigation."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.conftest import PASSWORDS

    driver.get(f"{base_url}/login")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORDS[username])
    driver.find_element(By.CSS_SELECTOR, "button.primary").click()
    WebDriverWait(driver, 20).until(lambda d: "/login" not in d.current_url)


def follow(driver, element) -> None:
    """Click a link or a submit button and wait until the next page has replaced this one, so that
    what the test looks up next is on the page the click led to, never on the old one."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 20).until(ready.staleness_of(page))
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")


@pytest.fixture
def screenshots() -> Path:
    folder = Path(SCREENSHOTS) if SCREENSHOTS else ARTEFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
