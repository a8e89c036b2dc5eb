"""The study report page in headless Chromium: it renders under the CSP with both pictures, and a
screenshot is kept (test-artefacts/screenshots/report.png)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from selenium.webdriver.common.by import By

from tests.browser import follow, log_in
from tests.conftest import api_token
from tests.webapp.reports.study_helpers import upload_study


def test_report_page_in_chromium(trained_app, browser, live_url, screenshots):
    client = trained_app.test_client()
    headers = api_token(trained_app, "doctor")
    uploaded = upload_study(client, headers, seed=41)
    image_id = uploaded["image_id"]
    client.post(f"/api/v1/images/{image_id}/labels", headers=headers, json={"label": "normal"})

    log_in(browser, live_url, "doctor")
    browser.get(f"{live_url}/predictions/{uploaded['prediction']['id']}")
    follow(browser, browser.find_element(By.ID, "report-link"))
    assert browser.find_element(By.ID, "report-status").text == "FINAL"
    assert "normal" in browser.find_element(By.ID, "final-label").text
    pictures = browser.find_elements(By.CSS_SELECTOR, ".pictures img")
    assert len(pictures) == 3  # the radiograph, and the radiograph with the heat map laid over it
    assert all(browser.execute_script("return arguments[0].naturalWidth", img) > 0 for img in pictures)
    under, heat = browser.find_elements(By.CSS_SELECTOR, ".overlaid img")
    assert heat.rect == under.rect  # the heat map covers its radiograph exactly
    refused = [e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not refused, refused
    browser.save_screenshot(str(screenshots / "report.png"))
    assert (screenshots / "report.png").stat().st_size > 10_000


@pytest.mark.skipif(not shutil.which("pdftoppm"), reason="pdftoppm (poppler-utils) is not installed")
def test_pdf_first_page_as_png(trained_app, screenshots):
    client = trained_app.test_client()
    headers = api_token(trained_app, "doctor")
    image_id = upload_study(client, headers, seed=43)["image_id"]
    pdf = screenshots / "report.pdf"
    pdf.write_bytes(client.get(f"/api/v1/images/{image_id}/report.pdf", headers=headers).data)
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "80",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(pdf),
            str(screenshots / "report-pdf"),
        ],
        check=True,
    )
    assert (screenshots / "report-pdf.png").stat().st_size > 10_000
