"""The review page in a real headless Chromium: keyboard shortcuts, heat-map toggle, chat.

Needs Debian's `chromium` and `chromium-driver` (`make test-browser` installs them); skipped,
with the reason, where they are missing."""
import shutil
import threading

import pytest
from werkzeug.serving import make_server

from webapp.extensions import db
from webapp.models import Label

pytestmark = pytest.mark.browser


@pytest.fixture
def browser():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("chromium and chromium-driver are not installed (make test-browser installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1300,1000"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium")
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def live_url(trained_app):
    server = make_server("127.0.0.1", 0, trained_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_doctor_reviews_with_the_keyboard_and_asks_the_assistant(browser, live_url, trained_app):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    browser.get(f"{live_url}/login")
    browser.find_element(By.NAME, "username").send_keys("doctor")
    browser.find_element(By.NAME, "password").send_keys("doctor-pass")
    browser.find_element(By.CSS_SELECTOR, "button.primary").click()
    browser.get(f"{live_url}/review")
    heat = wait.until(ready.presence_of_element_located((By.ID, "heat")))
    browser.find_element(By.ID, "heat-toggle").click()
    assert not heat.is_displayed()

    box = browser.find_element(By.ID, "chat-input")
    box.send_keys("How sure are you?", Keys.ENTER)
    answer = wait.until(lambda d: [m for m in d.find_elements(By.CSS_SELECTOR, ".chat .assistant")])
    assert "%" in answer[0].text and "does not replace the doctor" in answer[0].text

    browser.find_element(By.TAG_NAME, "body").send_keys("1")       # 1 = the first class: normal
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".flash.success")))
    with trained_app.app_context():
        label = db.session.execute(db.select(Label)).scalar_one()
        assert label.label == "normal" and label.user.username == "doctor"
        assert label.time_spent_ms is not None and label.time_spent_ms > 0
