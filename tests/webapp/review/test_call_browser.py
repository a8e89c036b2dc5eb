"""The model's call on the review, prediction and upload pages in headless Chromium: classes read as
their display names (buttons, bars, the call), a near tie reads "Uncertain between X and Y" with both
probabilities, a clear call reads "Model says: X". Screenshots: call_review_uncertain.png,
call_prediction_uncertain.png, call_prediction_clear.png, call_upload.png."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests import synthetic
from tests.browser import follow, log_in
from tests.conftest import api_token
from webapp.classes import catalog
from webapp.extensions import db
from webapp.models import Image, LabelClass, Prediction
from webapp.services import services

pytestmark = pytest.mark.browser

# a hospital added viral pneumonia at run time: its default display name reads as words
NEAR_TIE = {"normal": 0.31, "pneumonia": 0.33, "viral_pneumonia": 0.36}
CLEAR = {"normal": 0.05, "pneumonia": 0.10, "viral_pneumonia": 0.85}
SHOWN = ["Normal", "Pneumonia", "Viral pneumonia"]


def _predicted(image_id: int, probabilities: dict[str, float]) -> int:
    """A prediction of the serving version with chosen probabilities: the page shows the latest one."""
    top = max(probabilities, key=probabilities.__getitem__)
    row = Prediction(
        image_id=image_id,
        model_version=services().registry.version_for("champion"),
        probabilities=probabilities,
        predicted_class=top,
        confidence=probabilities[top],
    )
    db.session.add(row)
    db.session.commit()
    return row.id


def _page_errors(browser) -> list[str]:
    return [
        e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]
    ]


def _full_page(browser, path) -> None:
    browser.set_window_size(1300, browser.execute_script("return document.body.scrollHeight") + 40)
    browser.save_screenshot(str(path))
    browser.set_window_size(1300, 1000)


def _bars(browser) -> dict[str, tuple[str, str]]:
    """The first card's class bars: display name -> (percentage shown, the bar's class)."""
    rows = browser.find_elements(By.CSS_SELECTOR, ".side .card ul.bars li")
    return {
        row.find_elements(By.TAG_NAME, "span")[0].text: (
            row.find_elements(By.TAG_NAME, "span")[-1].text,
            row.get_attribute("class"),
        )
        for row in rows
    }


def _class_buttons(browser) -> list[str]:
    return [
        b.text.split("\n")[0].removesuffix(f" {b.get_attribute('data-key')}").strip()
        for b in browser.find_elements(By.CSS_SELECTOR, "#label-form button[data-key]")
    ]


def test_a_near_tie_reads_as_doubt_on_the_review_and_prediction_pages(trained_app, browser, live_url, screenshots):
    catalog.add("viral_pneumonia", services().settings.class_names)
    served = trained_app.test_client().get("/api/v1/review/next", headers=api_token(trained_app, "doctor")).get_json()
    image_id = served["image"]["id"]  # claimed by the doctor: /review shows it again
    prediction_id = _predicted(image_id, NEAR_TIE)

    log_in(browser, live_url, "doctor")
    browser.get(f"{live_url}/review")
    assert f"Review image {image_id}" in browser.find_element(By.TAG_NAME, "h1").text
    call = browser.find_element(By.ID, "model-call")
    assert call.text == "Uncertain between Viral pneumonia and Pneumonia"
    assert "uncertain" in call.find_element(By.CSS_SELECTOR, ".model-call").get_attribute("class")
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "Model says" not in page and "viral_pneumonia" not in page
    # both probabilities stay visible, the two hesitated-between classes marked
    assert _bars(browser) == {
        "Viral pneumonia": ("36.0%", "between"),
        "Pneumonia": ("33.0%", "between"),
        "Normal": ("31.0%", ""),
    }
    assert _class_buttons(browser) == SHOWN
    assert browser.find_element(By.ID, "confirm").text.startswith("Confirm Viral pneumonia")
    _full_page(browser, screenshots / "call_review_uncertain.png")

    browser.get(f"{live_url}/predictions/{prediction_id}")
    assert browser.find_element(By.ID, "model-call").text == "Uncertain between Viral pneumonia and Pneumonia"
    assert _class_buttons(browser) == SHOWN
    _full_page(browser, screenshots / "call_prediction_uncertain.png")
    assert _page_errors(browser) == []


def test_a_clear_call_names_the_class_and_the_answer_reads_as_its_name(trained_app, browser, live_url, screenshots):
    catalog.add("viral_pneumonia", services().settings.class_names)
    image_id = db.session.execute(db.select(Image.id).filter_by(split="pool").order_by(Image.id).limit(1)).scalar_one()
    prediction_id = _predicted(image_id, CLEAR)

    log_in(browser, live_url, "doctor")
    browser.get(f"{live_url}/predictions/{prediction_id}")
    assert browser.find_element(By.ID, "model-call").text == "Model says: Viral pneumonia"
    assert "Uncertain" not in browser.find_element(By.TAG_NAME, "main").text
    assert _bars(browser)["Viral pneumonia"] == ("85.0%", "top")
    assert _class_buttons(browser) == SHOWN
    _full_page(browser, screenshots / "call_prediction_clear.png")

    # the doctor corrects it: the flash and the page say what was chosen in its display name
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#label-form button[data-key='2']"))
    assert f"Saved: image {image_id} labeled Pneumonia." in browser.find_element(By.CSS_SELECTOR, ".flash").text
    assert "You labeled this image Pneumonia" in browser.find_element(By.ID, "my-label").text
    assert _page_errors(browser) == []


def test_the_upload_page_shows_the_call_in_display_names(trained_app, browser, live_url, screenshots, tmp_path):
    db.session.execute(db.update(LabelClass).where(LabelClass.name == "pneumonia").values(display="Lung infection"))
    db.session.commit()
    film = tmp_path / "chest.png"
    film.write_bytes(synthetic.png_bytes(synthetic.radiograph(1, seed=777)))
    log_in(browser, live_url, "doctor")
    browser.get(f"{live_url}/upload")
    browser.find_element(By.ID, "picker").send_keys(str(film))
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results tbody tr td a"))

    image_id = db.session.execute(db.select(Image.id).order_by(Image.id.desc()).limit(1)).scalar_one()
    prediction = (
        trained_app.test_client()
        .get(f"/api/v1/images/{image_id}", headers=api_token(trained_app, "doctor"))
        .get_json()["prediction"]
    )
    shown = {"normal": "Normal", "pneumonia": "Lung infection"}
    between = prediction["uncertain_between"]
    expected = (
        f"Uncertain between {shown[between[0]]} and {shown[between[1]]}"
        if between
        else shown[prediction["predicted_class"]]
    )
    row = browser.find_element(By.CSS_SELECTOR, "#results tbody tr")
    assert row.find_element(By.TAG_NAME, "strong").text == expected
    labels = [li.find_elements(By.TAG_NAME, "span")[0].text for li in row.find_elements(By.CSS_SELECTOR, "ul.bars li")]
    assert sorted(labels) == ["Lung infection", "Normal"]
    # the bars are drawn, as wide as their probabilities (a bar with no fill was invisible before)
    widths = [float(rect.get_attribute("width")) for rect in row.find_elements(By.CSS_SELECTOR, "ul.bars rect")]
    expected_widths = sorted(p * 100 for p in prediction["probabilities"].values())
    assert all(abs(a - b) <= 0.051 for a, b in zip(sorted(widths), expected_widths, strict=True))
    assert all(rect.size["width"] > 0 for rect in row.find_elements(By.CSS_SELECTOR, "ul.bars rect"))
    browser.save_screenshot(str(screenshots / "call_upload.png"))
    assert _page_errors(browser) == []
