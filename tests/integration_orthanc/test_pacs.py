"""`medal pacs pull` / `push` and the worker's pull against a real Orthanc over DICOMweb (no mocks)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.conftest import change_settings
from tests.integration_orthanc.orthanc import PASSWORD, USER, make_study


def use_pacs(app, orthanc, password: str = PASSWORD) -> None:
    change_settings(app, {"pacs": {"url": orthanc.dicomweb, "username": USER, "password": password}})


def load(orthanc, *studies):
    for study in studies:
        for data in study.files:
            orthanc.load(data)
    return studies


def pacs_images():
    from webapp.extensions import db
    from webapp.models import Image

    return db.session.execute(db.select(Image).filter_by(origin="pacs").order_by(Image.id)).scalars().all()


def stored_bytes(home: Path) -> bytes:
    """Everything the app database holds, as the files on disk (the WAL too)."""
    return b"".join(path.read_bytes() for path in sorted(home.glob("medal.db*")))


def test_pull_stores_cr_and_dx_refuses_ct_and_never_pulls_twice(app, runner, orthanc, home):
    from webapp.extensions import db
    from webapp.models import AuditEvent, PacsStudy

    studies = load(
        orthanc,
        make_study(1, ("CR",)),
        make_study(2, ("CR",)),
        make_study(3, ("DX",)),
        make_study(4, ("CR", "CT")),  # the CR is pulled, the CT refused by ingest
        make_study(5, ("CT",)),  # not a CR/DX study: the query never lists it
    )
    use_pacs(app, orthanc)

    first = runner.invoke(args=["pacs", "pull"])
    assert first.exit_code == 0, first.output
    assert "4 studies found: 4 pulled" in first.output
    assert "4 images stored" in first.output and "1 refused" in first.output
    assert "CT" in first.output  # the refusal names its reason
    images = pacs_images()
    assert len(images) == 4
    assert {(i.split, i.site, i.source_format) for i in images} == {("pool", "pacs", "dicom")}
    assert {row.status for row in db.session.execute(db.select(PacsStudy)).scalars()} == {"pulled"}

    second = runner.invoke(args=["pacs", "pull", "--since", "2000-01-01"])
    assert second.exit_code == 0, second.output
    assert "0 pulled" in second.output and "4 already pulled" in second.output and "0 images stored" in second.output
    assert len(pacs_images()) == 4

    events = db.session.execute(db.select(AuditEvent).filter_by(kind="pacs_pull")).scalars().all()
    assert [(e.details["ok"], e.details["stored"]) for e in events] == [(True, 4), (True, 0)]
    assert sum(events[0].details["refused"].values()) == 1

    # no original identifier (UIDs, patient ids and names, accession numbers) reached the database
    db.session.commit()
    content = stored_bytes(home)
    for study in studies:
        for value in study.identifiers:
            assert value.encode() not in content, value


def test_since_excludes_older_studies_and_the_default_starts_at_the_last_pull(app, runner, orthanc):
    load(orthanc, make_study(11, ("CR",), study_date="20200101"), make_study(12, ("DX",), study_date="20240315"))
    use_pacs(app, orthanc)

    dated = runner.invoke(args=["pacs", "pull", "--since", "2023-01-01"])
    assert dated.exit_code == 0, dated.output
    assert "1 studies found: 1 pulled" in dated.output
    assert len(pacs_images()) == 1

    load(orthanc, make_study(13, ("CR",), study_date=date.today().strftime("%Y%m%d")))
    default = runner.invoke(args=["pacs", "pull"])  # since the last successful pull: only today's study
    assert default.exit_code == 0, default.output
    assert "1 studies found: 1 pulled" in default.output
    assert len(pacs_images()) == 2


def test_a_wrong_password_is_a_clear_error_without_traceback(app, runner, orthanc):
    from webapp.extensions import db
    from webapp.models import AuditEvent, PacsStudy

    load(orthanc, make_study(21, ("CR",)))
    use_pacs(app, orthanc, password="not-the-password")

    result = runner.invoke(args=["pacs", "pull"])
    assert result.exit_code == 1
    assert "refused medal's credentials (HTTP 401)" in result.output
    assert "MEDAL_PACS__PASSWORD" in result.output
    assert "Traceback" not in result.output and "not-the-password" not in result.output
    assert pacs_images() == [] and db.session.execute(db.select(PacsStudy)).first() is None
    failed = db.session.execute(db.select(AuditEvent).filter_by(kind="pacs_pull")).scalar_one()
    assert failed.details["ok"] is False and "not-the-password" not in str(failed.details) + failed.reason


def test_no_pacs_configured_is_a_clear_error(app, runner):
    result = runner.invoke(args=["pacs", "pull"])
    assert result.exit_code == 1 and "No PACS is configured: set pacs.url" in result.output


def test_the_worker_job_pulls_and_survives_an_unreachable_pacs(app, orthanc):
    from webapp.training import jobs, worker

    load(orthanc, make_study(31, ("DX",)))
    use_pacs(app, orthanc)
    assert worker.build_scheduler(app).get_job("pacs_pull") is not None
    jobs.bind(app)
    assert jobs.pacs_pull()["stored"] == 1
    assert jobs.pacs_pull()["stored"] == 0

    change_settings(app, {"pacs": {"url": "http://127.0.0.1:9/dicom-web"}})
    assert "Cannot reach the PACS at http://127.0.0.1:9/dicom-web" in jobs.pacs_pull()["error"]
    change_settings(app, {"pacs": {"url": ""}})
    assert worker.build_scheduler(app).get_job("pacs_pull") is None


def test_pulled_images_get_predictions_and_a_heat_map_goes_back_as_secondary_capture(trained_app, runner, orthanc):
    from webapp.extensions import db
    from webapp.inference import explanations
    from webapp.models import Image, Prediction

    study = load(orthanc, make_study(41, ("CR",)))[0]
    use_pacs(trained_app, orthanc)
    result = trained_app.test_cli_runner().invoke(args=["pacs", "pull"])
    assert result.exit_code == 0, result.output
    (image,) = pacs_images()
    prediction = db.session.execute(db.select(Prediction).filter_by(image_id=image.id)).scalar_one()
    explanations.drain()  # the heat map is made after the prediction, in the background
    db.session.expire_all()
    assert prediction.heatmap_path and Path(prediction.heatmap_path).exists()

    pushed = trained_app.test_cli_runner().invoke(args=["pacs", "push", str(image.id)])
    assert pushed.exit_code == 0, pushed.output
    assert "as a Secondary Capture" in pushed.output
    (orthanc_study,) = orthanc.rest("GET", "/studies").json()
    tags = orthanc.rest("GET", f"/studies/{orthanc_study}").json()["MainDicomTags"]
    assert tags["StudyInstanceUID"] == study.uid  # the original study, not a new one
    series = orthanc.rest("GET", f"/studies/{orthanc_study}/series").json()
    (heat_map,) = [s for s in series if s["MainDicomTags"].get("Modality") == "OT"]
    assert heat_map["MainDicomTags"]["SeriesDescription"] == "medal heat map (AI, not for diagnosis alone)"
    sc = orthanc.rest("GET", f"/instances/{heat_map['Instances'][0]}/simplified-tags").json()
    assert sc["SOPClassUID"] == "1.2.840.10008.5.1.4.1.1.7" and sc["ConversionType"] == "WSD"
    assert sc["PatientID"] == study.patient_id and sc["PatientName"] == study.patient_name  # from the PACS
    assert sc["PhotometricInterpretation"] == "RGB"

    other = db.session.execute(db.select(Image).filter(Image.origin != "pacs").limit(1)).scalar_one()
    refused = trained_app.test_cli_runner().invoke(args=["pacs", "push", str(other.id)])
    assert refused.exit_code == 1 and "did not come from the PACS" in refused.output


@pytest.mark.parametrize("value", [1234, "secret"])
def test_the_password_is_text_and_never_shown(app, value):
    change_settings(app, {"pacs": {"password": value}})
    settings = app.extensions["medal"].settings.pacs
    assert settings.password.get_secret_value() == str(value)
    assert str(value) not in repr(settings)
