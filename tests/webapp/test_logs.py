"""Patient identifiers never leave the door: after a full run (import with a manifest, DICOM and form
uploads carrying patient ids and names, labels, a fine-tune, a gate) none of them is in the logs, the
database, the image store or the MLflow store."""

from __future__ import annotations

import io
import logging
import sqlite3

import pytest

from tests import synthetic
from tests.conftest import api_token, seed_gold

PATIENT_IDS = [f"MRN-QX{n:04d}-ZEBRA" for n in range(20)]
UPLOAD_ID = "MRN-UPLOAD-7Q7Q7Q"
DICOM_ID = "MRN-DICOM-K9K9K9"
DICOM_NAME = "Quixotic^Zebedee"
IDENTIFIERS = [*PATIENT_IDS, UPLOAD_ID, DICOM_ID, DICOM_NAME, "Quixotic", "Zebedee"]


def _dicom(image) -> bytes:
    import pydicom

    dataset = pydicom.dcmread(io.BytesIO(synthetic.dicom_bytes(image, patient_name=DICOM_NAME)))
    dataset.PatientID = DICOM_ID
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _tree(root):
    images, labels = synthetic.dataset(40, seed=11)
    rows = ["filename,label,patient_id"]
    for i, (image, label) in enumerate(zip(images, labels)):
        name = f"{synthetic.CLASSES[label]}/{i:03d}.png"
        (root / synthetic.CLASSES[label]).mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(synthetic.png_bytes(image))
        rows.append(f"{name},{synthetic.CLASSES[label]},{PATIENT_IDS[i // 2]}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")


def _files_holding(root, needles: list[bytes]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and path.name != "manifest.csv":
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}: {needle.decode()}" for needle in needles if needle in data]
    return found


@pytest.mark.slow
def test_no_patient_identifier_reaches_logs_database_or_stores(app, client, runner, home, tmp_path, caplog):
    from webapp.extensions import db
    from webapp.training import runs

    caplog.set_level(logging.DEBUG)
    source = tmp_path / "source"
    _tree(source)
    imported = runner.invoke(args=["import", str(source), "--split", "train"])
    assert imported.exit_code == 0, imported.output

    doctor = api_token(app, "doctor")
    first = runs.run(runs.enqueue("test"))  # a champion, so uploads are predicted
    assert first.status == "succeeded", first.error
    uploads = [
        ("scan.dcm", _dicom(synthetic.radiograph(1, seed=5)), {}),
        ("film.png", synthetic.png_bytes(synthetic.radiograph(0, seed=6)), {"patient_id": UPLOAD_ID}),
    ]
    for name, data, form in uploads:
        response = client.post(
            "/api/v1/images",
            headers=doctor,
            content_type="multipart/form-data",
            data={**form, "file": (io.BytesIO(data), name)},
        )
        assert response.status_code == 201, response.data
        image_id = response.get_json()["image_id"]
        labeled = client.post(f"/api/v1/images/{image_id}/labels", headers=doctor, json={"label": "pneumonia"})
        assert labeled.status_code == 201, labeled.data

    seed_gold(8)
    second = runs.run(runs.enqueue("test"))  # fine-tune on the new labels, then the gate
    assert second.status == "succeeded", second.error
    assert client.get("/api/v1/models/history?kind=gate", headers=api_token(app, "engineer")).get_json()["events"]

    needles = [identifier.encode() for identifier in IDENTIFIERS]
    logged = "\n".join(record.getMessage() for record in caplog.records) + imported.output
    assert not [i for i in IDENTIFIERS if i in logged]
    db.session.commit()
    url = db.engine.url
    assert url.get_backend_name() == "sqlite"
    with sqlite3.connect(url.database) as connection:
        dump = "\n".join(connection.iterdump())
    assert not [i for i in IDENTIFIERS if i in dump]
    # everything under MEDAL_HOME: log files, images, the MLflow store and its artifacts, the database
    assert not _files_holding(home, needles)
    assert len(caplog.records) > 10  # the run did log
