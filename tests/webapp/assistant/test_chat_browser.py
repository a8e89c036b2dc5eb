"""The chat panel in headless Chromium: a question shows the "thinking" indicator until its answer
arrives, then the answer (screenshots: test-artefacts/screenshots/chat-thinking.png, chat-answer.png)."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import log_in
from tests.conftest import api_token, upload_synthetic

# The page's own fetch, held back 1.5 s before it goes out: long enough for a screenshot of the
# indicator; the answer is still the server's real one.
SLOW_NETWORK = """
const send = window.fetch;
window.fetch = (url, options) => options && options.method === "POST"
  ? new Promise(resolve => setTimeout(() => resolve(send(url, options)), 1500))
  : send(url, options);
"""


def test_a_question_shows_thinking_then_the_answer(trained_app, browser, live_url, screenshots):
    prediction = upload_synthetic(trained_app.test_client(), api_token(trained_app, "doctor"), seed=81)
    log_in(browser, live_url, "doctor")
    browser.get(f"{live_url}/predictions/{prediction['id']}")
    panel = browser.find_element(By.ID, "chat-panel")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", panel)
    browser.execute_script(SLOW_NETWORK)

    browser.find_element(By.ID, "chat-input").send_keys("Is there a pleural effusion?")
    browser.find_element(By.CSS_SELECTOR, "#chat-form button[type=submit]").click()
    thinking = WebDriverWait(browser, 5).until(lambda d: d.find_element(By.ID, "chat-thinking"))
    assert thinking.is_displayed() and thinking.text.startswith("Thinking")
    assert thinking.get_attribute("role") == "status"  # screen readers hear it too
    assert not browser.find_element(By.CSS_SELECTOR, "#chat-form button[type=submit]").is_enabled()
    panel.screenshot(str(screenshots / "chat-thinking.png"))

    answer = WebDriverWait(browser, 120).until(
        lambda d: next((m for m in d.find_elements(By.CSS_SELECTOR, "#chat-log .msg.assistant")), None)
    )
    assert answer.text.startswith("This model does not assess pleural effusion. It assesses: Normal, Pneumonia.")
    assert not browser.find_elements(By.ID, "chat-thinking")
    assert browser.find_element(By.CSS_SELECTOR, "#chat-form button[type=submit]").is_enabled()
    panel.screenshot(str(screenshots / "chat-answer.png"))
    refused = [e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not refused, refused
