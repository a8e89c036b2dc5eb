"""FHIR R4 export: the Bundle validates with fhir.resources as the study moves preliminary -> final ->
amended, carries the AIAST label, the model's Device and version, the Provenance agent and the PDF;
`medal fhir push` is refused cleanly while off and POSTs a transaction to a configured server."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from fhir.resources.R4B.bundle import Bundle

from tests.conftest import api_token, change_settings, csrf_token, login
from tests.webapp.reports.study_helpers import PATIENT_ID, pdf_text, upload_study


def _resources(body: dict) -> dict:
    return {entry["resource"]["resourceType"]: entry["resource"] for entry in body["entry"]}


def _export(client, image_id, headers) -> dict:
    response = client.get(f"/api/v1/images/{image_id}/fhir", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/fhir+json"
    body = response.get_json()
    Bundle.model_validate(body)  # R4 (fhir.resources R4B) validation of the whole bundle
    return body


def _check_ai_parts(found: dict, version: int) -> None:
    aiast = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "AIAST"}
    device, observation, provenance = found["Device"], found["Observation"], found["Provenance"]
    for resource in (device, observation):
        assert any(aiast.items() <= label.items() for label in resource["meta"]["security"])
    assert device["version"] == [{"value": str(version)}]
    device_ref = observation["device"]["reference"]
    assert provenance["agent"][0]["who"]["reference"] == device_ref
    targets = {target["reference"] for target in provenance["target"]}
    assert len(targets) == 2 and observation["id"] in " ".join(targets)


class _Recorder(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's spelling)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.end_headers()
        self.wfile.write(b'{"resourceType": "Bundle", "type": "transaction-response"}')

    def log_message(self, *args):
        pass


def test_bundle_follows_the_report_and_push(trained_app, trained_client):
    headers = api_token(trained_app, "doctor")
    uploaded = upload_study(trained_client, headers, seed=23)
    image_id, predicted = uploaded["image_id"], uploaded["prediction"]["predicted_class"]

    body = _export(trained_client, image_id, headers)
    assert body["type"] == "collection"
    found = _resources(body)
    report = found["DiagnosticReport"]
    assert report["status"] == "preliminary" and found["Observation"]["status"] == "preliminary"
    assert report["category"][0]["coding"][0]["code"] == "RAD"
    assert report["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "36554-4",
        "display": "XR Chest Single view",
    }
    assert "resultsInterpreter" not in report and "Practitioner" not in found
    assert found["Patient"]["identifier"][0]["system"] == "urn:medal:patient-pseudonym"
    assert set(found["Patient"]) == {"resourceType", "id", "identifier"}  # the pseudonym and nothing else
    assert PATIENT_ID not in json.dumps(body)
    _check_ai_parts(found, uploaded["prediction"]["model_version"])
    pdf = base64.b64decode(report["presentedForm"][0]["data"])
    assert report["presentedForm"][0]["contentType"] == "application/pdf" and "PRELIMINARY" in pdf_text(pdf)

    trained_client.post(f"/api/v1/images/{image_id}/labels", headers=headers, json={"label": predicted})
    found = _resources(_export(trained_client, image_id, headers))
    assert found["DiagnosticReport"]["status"] == "final"
    assert found["Practitioner"]["identifier"] == [{"system": "urn:medal:username", "value": "doctor"}]
    assert found["DiagnosticReport"]["resultsInterpreter"][0]["reference"].endswith(found["Practitioner"]["id"])
    assert predicted.capitalize() in found["DiagnosticReport"]["conclusion"]  # the display name: a person reads it

    other = "normal" if predicted == "pneumonia" else "pneumonia"
    login(trained_client, "doctor")
    token = csrf_token(trained_client, f"/images/{image_id}/report")
    amended = trained_client.post(
        f"/images/{image_id}/report/amend", data={"label": other, "reason": "Second look", "csrf_token": token}
    )
    assert amended.status_code == 302
    found = _resources(_export(trained_client, image_id, headers))
    assert found["DiagnosticReport"]["status"] == "amended" and found["Observation"]["status"] == "amended"
    assert found["DiagnosticReport"]["conclusionCode"][0]["text"] == other.capitalize()
    assert "AMENDED" in pdf_text(base64.b64decode(found["DiagnosticReport"]["presentedForm"][0]["data"]))

    # push: off while fhir.server_url is empty, a clean refusal and nothing sent
    runner = trained_app.test_cli_runner()
    refused = runner.invoke(args=["fhir", "push", str(image_id)])
    assert refused.exit_code != 0 and "fhir.server_url" in refused.output
    # a local HTTP server stands in for the FHIR server (no FHIR server package exists): it records the POST
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        change_settings(trained_app, {"fhir": {"server_url": f"http://127.0.0.1:{server.server_port}/fhir"}})
        sent = runner.invoke(args=["fhir", "push", str(image_id)])
    finally:
        server.shutdown()
        server.server_close()
    assert sent.exit_code == 0, sent.output
    assert "HTTP 200" in sent.output
    path, media, posted = _Recorder.received[-1]
    assert path == "/fhir/" and media == "application/fhir+json"
    assert posted["type"] == "transaction"
    assert {entry["request"]["method"] for entry in posted["entry"]} == {"POST"}
    Bundle.model_validate(posted)
