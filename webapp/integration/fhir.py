"""FHIR R4 export of a study: a Bundle with the DiagnosticReport, the AI finding (Observation), the model
(Device) and its Provenance, built and validated with fhir.resources (its R4B module: R4-compatible for
these resources; fhir.resources 8 defaults to R5); and the optional push to the hospital's FHIR server."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from webapp.classes import catalog
from webapp.errors import Problem
from webapp.inference import doubt
from webapp.reports import study
from webapp.services import services

# urn:uuid fullUrls derive from these, so one study always exports the same resource ids
NAMESPACE = uuid.UUID("5b1f3c4e-6a43-4c55-9d0e-6d6564616c21")
AIAST = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "AIAST",
    "display": "Artificial Intelligence asserted",
}
RAD = {"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD", "display": "Radiology"}
# medal reads one frontal radiograph per study: "XR Chest Single view". 36643-5 (XR Chest 2 Views) would
# claim a lateral film nobody read, and 30746-2 is the portable exam with an unstated number of views.
LOINC_CHEST_SINGLE_VIEW = {"system": "http://loinc.org", "code": "36554-4", "display": "XR Chest Single view"}
IMAGING = {
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "imaging",
    "display": "Imaging",
}
PSEUDONYM_SYSTEM = "urn:medal:patient-pseudonym"
USERNAME_SYSTEM = "urn:medal:username"
CLASS_SYSTEM = "urn:medal:class"
MEDIA_TYPE = "application/fhir+json"


class FhirError(Problem):
    """A FHIR export or push that cannot be done as asked."""


def _uuid(*parts: object) -> str:
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, '/'.join(map(str, parts)))}"


def _instant(moment: datetime | None) -> str | None:
    return moment.replace(tzinfo=UTC).isoformat() if moment else None


def _ai_meta() -> dict:
    return {"security": [AIAST]}


def _class_concept(name: str, text: str | None = None) -> dict:
    """A medal class as a CodeableConcept: the identifier is the code, a person reads its display name."""
    shown = catalog.display(name)
    return {"coding": [{"system": CLASS_SYSTEM, "code": name, "display": shown}], "text": text or shown}


def bundle(image_id: int) -> Bundle:
    """The study as a validated FHIR R4 collection Bundle (the PDF report included as presentedForm)."""
    content, report = study.issue(image_id)
    if content.prediction is None:
        raise FhirError(f"Study {image_id} has no prediction yet, so there is nothing to export.", 409)
    image, prediction, c = content.image, content.prediction, content.confirmation
    model = services().settings.model
    status = c.status  # preliminary | final | amended: FHIR's DiagnosticReport and Observation codes alike

    patient_url = _uuid(image.id, "patient")
    patient: dict[str, Any] = {"resourceType": "Patient", "id": patient_url.rsplit(":", 1)[1]}
    if image.patient_key:  # only the keyed pseudonym: no name, no birth date, no hospital id
        patient["identifier"] = [{"system": PSEUDONYM_SYSTEM, "value": image.patient_key}]

    device_url = _uuid("device", model.name, prediction.model_version)
    device: dict[str, Any] = {
        "resourceType": "Device",
        "id": device_url.rsplit(":", 1)[1],
        "meta": _ai_meta(),
        "status": "active",
        "deviceName": [{"name": f"medal {model.name}", "type": "model-name"}],
        "modelNumber": model.backbone,
        "version": [{"value": str(prediction.model_version)}],
    }

    observation_url = _uuid(image.id, "observation", prediction.id)
    ranking = content.ranking
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_url.rsplit(":", 1)[1],
        "meta": _ai_meta(),
        "status": status,
        "category": [{"coding": [IMAGING]}],
        "code": {"coding": [LOINC_CHEST_SINGLE_VIEW], "text": "AI-suggested finding on the chest X-ray"},
        "subject": {"reference": patient_url},
        "effectiveDateTime": _instant(image.created_at),
        "issued": _instant(prediction.created_at),
        "valueCodeableConcept": _class_concept(prediction.predicted_class),
        "device": {"reference": device_url},
        "component": [
            {
                "code": _class_concept(name, text=f"probability of {catalog.display(name)}"),
                "valueQuantity": {
                    "value": round(p * 100, 2),
                    "unit": "%",
                    "system": "http://unitsofmeasure.org",
                    "code": "%",
                },
            }
            for name, p in ranking
        ],
    }
    call, notes = doubt.configured(prediction.probabilities), []
    if call.between:  # the coded value is the likeliest class: a reader must also see that the model hesitated
        notes.append(f"{call.words(catalog.display)}.")
    if prediction.location:
        notes.append(f"Heat map: {prediction.location}")
    if notes:
        observation["note"] = [{"text": note} for note in notes]

    practitioners: list[tuple[str, dict[str, Any]]] = []
    if c.labeled_by:
        for name in c.labeled_by.split(" and "):
            url = _uuid("practitioner", name)
            practitioners.append(
                (
                    url,
                    {
                        "resourceType": "Practitioner",
                        "id": url.rsplit(":", 1)[1],
                        "identifier": [{"system": USERNAME_SYSTEM, "value": name}],
                    },
                )
            )

    report_url = _uuid(image.id, "report")
    diagnostic: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": report_url.rsplit(":", 1)[1],
        "status": status,
        "category": [{"coding": [RAD]}],
        "code": {"coding": [LOINC_CHEST_SINGLE_VIEW], "text": "Chest X-ray"},
        "subject": {"reference": patient_url},
        "effectiveDateTime": _instant(image.created_at),
        "issued": _instant(report.created_at),
        "result": [{"reference": observation_url}],
        "conclusion": content.conclusion,
        "presentedForm": [
            {
                "contentType": "application/pdf",
                "language": "en",
                "data": base64.b64encode(study.pdf_file(report.content_hash).read_bytes()).decode(),
                "title": f"medal study report {image.id}, revision {report.revision} ({report.status})",
                "creation": _instant(report.created_at),
            }
        ],
    }
    if status == study.PRELIMINARY:
        diagnostic["meta"] = _ai_meta()  # no doctor has confirmed it: the conclusion is the model's
    else:
        diagnostic["resultsInterpreter"] = [{"reference": url} for url, _ in practitioners]
        if c.label:  # always there once a doctor confirmed
            diagnostic["conclusionCode"] = [_class_concept(c.label)]

    provenance_url = _uuid(image.id, "provenance", prediction.id)
    provenance: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": provenance_url.rsplit(":", 1)[1],
        "target": [{"reference": observation_url}, {"reference": report_url}],
        "recorded": _instant(prediction.created_at),
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "author",
                            "display": "Author",
                        }
                    ]
                },
                "who": {"reference": device_url, "display": f"medal {model.name} v{prediction.model_version}"},
            }
        ],
    }

    entries: list[tuple[str, dict[str, Any]]] = [
        (report_url, diagnostic),
        (observation_url, observation),
        (device_url, device),
    ]
    entries += [(provenance_url, provenance), (patient_url, patient)] + practitioners
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "id": _uuid(image.id, "bundle", report.revision).rsplit(":", 1)[1],
            "type": "collection",
            "timestamp": _instant(report.created_at),
            "entry": [{"fullUrl": url, "resource": resource} for url, resource in entries],
        }
    )


def to_json(found: Bundle) -> dict:
    return json.loads(found.model_dump_json(exclude_none=True))


def transaction(found: Bundle) -> dict:
    """The collection as a transaction the server stores in one go: every entry a POST (urn:uuid
    references are resolved by the server)."""
    body = to_json(found)
    body["type"] = "transaction"
    body.pop("timestamp", None)
    for entry in body["entry"]:
        entry["request"] = {"method": "POST", "url": entry["resource"]["resourceType"]}
    Bundle.model_validate(body)  # still valid FHIR
    return body


def push(image_id: int) -> tuple[int, str]:
    """POST the study's bundle to `fhir.server_url` as a transaction; the server's status and answer."""
    settings = services().settings.fhir
    if not settings.server_url:
        raise FhirError("FHIR push is off: set fhir.server_url in config.yaml (or MEDAL_FHIR__SERVER_URL).", 409)
    body = json.dumps(transaction(bundle(image_id))).encode()
    request = urllib.request.Request(
        settings.server_url.rstrip("/") + "/",
        data=body,
        method="POST",
        headers={"Content-Type": MEDIA_TYPE, "Accept": MEDIA_TYPE},
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout_seconds) as answer:  # noqa: S310 (configured URL)
            return answer.status, answer.read(65536).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        raise FhirError(f"The FHIR server refused the bundle: HTTP {error.code}.", 502) from None
    except (urllib.error.URLError, OSError) as error:
        raise FhirError(f"The FHIR server could not be reached: {getattr(error, 'reason', error)}.", 502) from None
