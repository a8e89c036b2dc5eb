"""The study report page in headless Chromium: it renders under the CSP with both pictures, a signed
report shows its header, findings, impression and signer, and the PDF is one full A4 page; the
screenshots and page images are kept (test-artefacts/screenshots/report*.png, report-pdf-*.png)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from pypdf import PdfReader
from selenium.webdriver.common.by import By

from tests.browser import follow, log_in
from tests.conftest import api_token, csrf_token, login
from tests.webapp.reports.study_helpers import FINDINGS, IMPRESSION, pdf_text, upload_study


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
    assert browser.find_element(By.ID, "final-label").text == "Normal"  # the display name
    pictures = browser.find_elements(By.CSS_SELECTOR, ".pictures img")
    assert len(pictures) == 3  # the radiograph, and the radiograph with the heat map laid over it
    assert all(browser.execute_script("return arguments[0].naturalWidth", img) > 0 for img in pictures)
    under, heat = browser.find_elements(By.CSS_SELECTOR, ".overlaid img")
    assert heat.rect == under.rect  # the heat map covers its radiograph exactly
    refused = [e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not refused, refused
    browser.save_screenshot(str(screenshots / "report.png"))
    assert (screenshots / "report.png").stat().st_size > 10_000


def test_signed_report_in_chromium(trained_app, trained_client, signed_study, browser, live_url, screenshots):
    """What a hospital signs: its header, the doctor's findings and impression, the signer's full name
    and job title, and display names (pneumonia is shown as "Lobar pneumonia" here)."""
    log_in(browser, live_url, "doctor")
    browser.get(f"{live_url}/images/{signed_study['id']}/report")
    institution = browser.find_element(By.ID, "institution").text
    assert "St Mary's Hospital" in institution and "Department of Radiology" in institution
    assert browser.find_element(By.ID, "findings").text == FINDINGS  # its line break kept
    assert browser.find_element(By.ID, "impression").text == IMPRESSION
    signoff = browser.find_element(By.ID, "signoff").text
    assert "Final label: Lobar pneumonia" in signoff
    assert "Reported and signed by Dr Ana Rossi, Consultant radiologist" in signoff
    model = browser.find_element(By.ID, "model").text
    assert "The model suggests Lobar pneumonia" in model and "pneumonia\n" not in model.lower().replace("lobar ", "")
    assert "a lung infection" in browser.find_element(By.ID, "plain-summary").text
    refused = [e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not refused, refused
    browser.save_screenshot(str(screenshots / "report-signed.png"))

    # the profile page, one click from any page, is where that signature is set
    follow(browser, browser.find_element(By.ID, "profile-link"))
    assert browser.find_element(By.ID, "signature").text == "Dr Ana Rossi, Consultant radiologist"
    browser.save_screenshot(str(screenshots / "profile.png"))


def pdf_pages(pdf: Path, stem: Path) -> list[Path]:
    """The PDF's pages as PNGs (pdftoppm), in page order."""
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf), str(stem)], check=True)
    return sorted(stem.parent.glob(f"{stem.name}-*.png"))


def inked_rows(png: Path) -> float:
    """The share of a page's pixel rows that carry ink: text, tables and pictures. A full page is about
    0.5; a page holding only a heading or a footer about 0.1."""
    grey = np.asarray(PILImage.open(png).convert("L"))
    return float(((grey < 200).mean(axis=1) > 0.002).mean())


@pytest.mark.skipif(not shutil.which("pdftoppm"), reason="pdftoppm (poppler-utils) is not installed")
def test_the_pdf_is_one_full_a4_page(trained_app, trained_client, signed_study, screenshots):
    """A one-study report fits one A4 page, preliminary, signed, and amended (the longest) alike, and
    no page is near blank."""
    for old in screenshots.glob("report-pdf-*"):
        old.unlink()
    client, headers = trained_client, signed_study["headers"]
    preliminary = upload_study(client, headers, seed=43)["image_id"]
    login(client, "doctor2")
    token = csrf_token(client, f"/images/{signed_study['id']}/report")
    reason = "Lateral film: the opacity is overlapping soft tissue, no consolidation."
    signed = client.get(f"/images/{signed_study['id']}/report.pdf").data
    answer = client.post(
        f"/images/{signed_study['id']}/report/amend", data={"label": "normal", "reason": reason, "csrf_token": token}
    )
    assert answer.status_code == 302
    amended = client.get(f"/images/{signed_study['id']}/report.pdf").data
    for name, data in (
        ("preliminary", client.get(f"/api/v1/images/{preliminary}/report.pdf", headers=headers).data),
        ("signed", signed),
        ("amended", amended),
    ):
        pdf = screenshots / f"report-pdf-{name}.pdf"
        pdf.write_bytes(data)
        pages = pdf_pages(pdf, screenshots / f"report-pdf-{name}")
        assert [page.name for page in pages] == [f"report-pdf-{name}-1.png"], name  # one page
        assert PdfReader(pdf).pages[0].mediabox.height == pytest.approx(842, abs=1)  # A4: 297 mm
        assert all(inked_rows(page) > 0.3 for page in pages), [inked_rows(page) for page in pages]
    assert "Amended and signed by doctor2" in " ".join(pdf_text(amended).split())
