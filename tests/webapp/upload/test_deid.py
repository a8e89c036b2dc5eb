"""De-identification of DICOM uploads (PS3.15 Annex E): every listed tag at any depth, private tags,
consistent keyed UIDs, the pseudonym, the facts kept, the record, and no identifier anywhere after."""

import io
import logging
import sqlite3
import warnings

import numpy as np
import pydicom
import pytest
from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as annex_e_table
from PIL import Image as PILImage
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import JPEG2000Lossless, RLELossless, generate_uid

from learning.decoding import decode_radiograph, read_dicom
from tests import synthetic
from tests.conftest import api_token, login
from webapp.extensions import db
from webapp.models import Deidentification, Image
from webapp.upload import deid
from webapp.upload.ingest import IngestError, ingest

IDENTIFIERS = {
    "PatientName": "Kowalczyk^Johanna",
    "PatientID": "MRN-8891234",
    "PatientBirthDate": "19580314",
    "AccessionNumber": "ACC552211",
    "InstitutionName": "Kingsbridge Royal Infirmary",
    "InstitutionAddress": "12 Millpond Lane, Kingsbridge",
    "StationName": "XRROOM7QX",
    "DeviceSerialNumber": "SN4471QXZ",
    "StudyDescription": "Chest PA Kowalczyk follow-up",
    "SeriesDescription": "PA erect Johanna",
    "ReferringPhysicianName": "Abernathy^Harold",
    "OperatorsName": "Treadwell^Mina",
    "StudyID": "STUDY99172",
}
PRIVATE_VALUE = "home phone 07123 998877"
NESTED = {"RequestedProcedureID": "RP7781Z", "ScheduledProcedureStepID": "SPS55102"}


def identifying(study_uid: str | None = None, series_uid: str | None = None, seed: int = 1, **pixels) -> Dataset:
    """A DX chest radiograph whose header holds every kind of identifier the profile names."""
    image = synthetic.radiograph(1, size=64, seed=seed)
    ds = read_dicom(synthetic.dicom_bytes(image, **pixels))
    for keyword, value in IDENTIFIERS.items():
        setattr(ds, keyword, value)
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition, ds.PatientSex = "DX", "CHEST", "PA", "F"
    ds.StudyDate, ds.StudyTime = "20240102", "101500"
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.private_block(0x0011, "ACME RIS", create=True).add_new(0x01, "LO", PRIVATE_VALUE)
    request = Dataset()
    request.RequestedProcedureID = NESTED["RequestedProcedureID"]
    request.ScheduledProcedureStepID = NESTED["ScheduledProcedureStepID"]
    request.AccessionNumber = IDENTIFIERS["AccessionNumber"]
    ds.RequestAttributesSequence = Sequence([request])
    patient = Dataset()
    patient.ReferencedSOPClassUID, patient.ReferencedSOPInstanceUID = "1.2.840.10008.3.1.2.1.4", generate_uid()
    ds.ReferencedPatientSequence = Sequence([patient])
    view = Dataset()  # a sequence the profile keeps, holding identifiers of its own
    view.CodeValue, view.CodingSchemeDesignator, view.CodeMeaning = "399348003", "SCT", "postero-anterior"
    view.OperatorsName = IDENTIFIERS["OperatorsName"]
    view.private_block(0x0013, "ACME VIEW", create=True).add_new(0x02, "LO", PRIVATE_VALUE)
    ds.ViewCodeSequence = Sequence([view])
    return ds


def _bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _uids(ds: Dataset) -> set[str]:
    found: set[str] = set()
    for dataset in (ds, ds.file_meta):
        dataset.walk(
            lambda _, e: (
                found.update([str(v) for v in (e.value if e.VM > 1 else [e.value])])
                if e.VR == "UI" and e.value and not e.keyword.endswith(("ClassUID", "TransferSyntaxUID"))
                else None
            )
        )
    return found


def _profile_tags() -> tuple[set[int], list[tuple[int, int, int, int]]]:
    """The standard's table as the maintained dicom-anonymizer package holds it (not a list kept here)."""
    exact = {(t[0] << 16) | t[1] for t in annex_e_table.ALL_TAGS if len(t) == 2}
    masked = [t for t in annex_e_table.ALL_TAGS if len(t) == 4]
    return exact, masked


def _listed(tag: int, exact, masked) -> bool:
    g, e = tag >> 16, tag & 0xFFFF
    return tag in exact or any(g & gm == mg & gm and e & em == me & em for mg, me, gm, em in masked)


def test_every_tag_the_profile_lists_is_removed_emptied_or_replaced(app):
    original = identifying()
    before_uids = _uids(original)
    result = deid.deidentify(original)
    exact, masked = _profile_tags()
    assert len(exact) > 500  # the whole table E.1-1, not a handful
    seen = []

    def check(ds, element):
        if not _listed(int(element.tag), exact, masked):
            return
        seen.append(element.keyword)
        if element.keyword in ("PatientAge", "PatientSex"):  # Retain Patient Characteristics Option
            return
        if element.keyword in ("PatientID", "PatientName"):
            assert str(element.value) == result.patient_key  # the pseudonym, nothing else
        elif element.VR == "UI":
            assert str(element.value) not in before_uids, element.keyword
        else:
            assert element.is_empty, f"{element.keyword} kept {element.value!r}"

    result.dataset.walk(check)
    result.dataset.file_meta.walk(check)
    for keyword in ("AccessionNumber", "InstitutionName", "StationName", "DeviceSerialNumber", "PatientBirthDate"):
        assert keyword not in result.dataset or result.dataset[keyword].is_empty
    assert "RequestAttributesSequence" not in result.dataset  # X: the sequence and its identifiers go
    assert "ReferencedPatientSequence" not in result.dataset
    assert "StudyDescription" not in result.dataset and "SeriesDescription" not in result.dataset


def test_private_tags_and_identifiers_inside_kept_sequences_are_gone(app):
    result = deid.deidentify(identifying())
    private = []
    result.dataset.walk(lambda _, e: private.append(e.tag) if e.tag.is_private else None)
    assert private == []
    view = result.dataset.ViewCodeSequence[0]
    assert view.CodeValue == "399348003" and "OperatorsName" not in view
    written = _bytes(result.dataset)
    for value in [*IDENTIFIERS.values(), *NESTED.values(), PRIVATE_VALUE, "Kowalczyk", "Johanna", "19580314"]:
        assert value.encode() not in written, value


def test_dicom_marks_the_identity_removed_and_the_method(app):
    result = deid.deidentify(identifying())
    ds = result.dataset
    assert ds.PatientIdentityRemoved == "YES"
    assert "DICOM PS3.15 Annex E basic profile" in list(ds.DeidentificationMethod)
    assert [item.CodeValue for item in ds.DeidentificationMethodCodeSequence] == ["113100", "113108"]
    record = result.record
    assert record["profile"] == "DICOM PS3.15 Annex E basic application level confidentiality profile"
    assert record["patient_identity_removed"] == "YES"
    assert record["library"].startswith("dicognito 0.19.0")
    assert "retain longitudinal temporal information: no (dates and times removed or emptied)" in record["options"]
    assert record["study_uid"] == ds.StudyInstanceUID and record["sop_uid"] == ds.SOPInstanceUID
    assert record["view_position"] == "PA"
    assert record["actions"]["private_removed"] >= 2 and record["actions"]["removed"] > 5


def test_uids_are_consistent_within_a_study_and_change_with_the_key(app, monkeypatch):
    study, series = generate_uid(), generate_uid()
    first, second = identifying(study, series, seed=1), identifying(study, series, seed=2)
    one, two = deid.deidentify(first).record, deid.deidentify(second).record
    assert one["study_uid"] == two["study_uid"] and one["series_uid"] == two["series_uid"]
    assert one["sop_uid"] != two["sop_uid"]
    assert study not in (one["study_uid"], one["series_uid"]) and series not in (one["study_uid"], one["series_uid"])
    again = deid.deidentify(identifying(study, series, seed=3)).record
    assert again["study_uid"] == one["study_uid"]  # the same original always maps to the same new UID
    monkeypatch.setenv("MEDAL_PSEUDONYM_KEY", "another installation's key")
    other = deid.deidentify(identifying(study, series, seed=1)).record
    assert other["study_uid"] != one["study_uid"]


def test_pseudonym_is_stable_and_differs_under_another_key(app, monkeypatch):
    first = deid.deidentify(identifying()).patient_key
    assert first == deid.deidentify(identifying(seed=5)).patient_key
    assert first.startswith("p-") and IDENTIFIERS["PatientID"] not in first
    monkeypatch.setenv("MEDAL_PSEUDONYM_KEY", "another installation's key")
    assert deid.deidentify(identifying()).patient_key != first


def test_age_sex_and_view_are_kept(app):
    result = deid.deidentify(identifying())
    assert (result.age, result.sex, result.view) == (65, "F", "PA")  # born 1958-03-14, studied 2024-01-02
    assert result.dataset.PatientAge == "065Y" and not result.dataset.get("PatientBirthDate")
    stated = identifying()
    stated.PatientAge = "007M"
    assert deid.patient_age(stated) == 0
    stated.PatientAge, stated.ViewPosition = "045Y", "AP"
    assert deid.deidentify(stated).age == 45 and deid.deidentify(identifying()).view == "PA"


def test_site_comes_from_the_config_map_never_the_institution_name(app):
    from tests.conftest import change_settings

    image, _ = ingest(_bytes(identifying()), origin="import")
    assert image.site == "local"
    change_settings(app, {"dicom": {"site_map": {"kingsbridge royal infirmary": "north"}}})
    mapped, _ = ingest(_bytes(identifying(seed=8)), origin="import")
    assert mapped.site == "north"


def _stored(image: Image) -> np.ndarray:
    from webapp.services import services

    return np.asarray(PILImage.open(services().store.root / image.path).convert("L"))


@pytest.mark.parametrize("variant", ["monochrome1", "twelve_bit", "rle", "jpeg2000"])
def test_round_trips_into_the_store_with_the_record(app, variant):
    ds = identifying(photometric="MONOCHROME1") if variant == "monochrome1" else identifying()
    if variant != "monochrome1":
        values = (synthetic.radiograph(1, size=64, seed=1).astype(np.uint16) * 16).astype(np.uint16)
        ds.BitsStored, ds.HighBit, ds.PixelData = 12, 11, values.tobytes()
    plain = decode_radiograph(_bytes(ds), 10**8).pixels
    if variant == "rle":
        ds.compress(RLELossless)
    elif variant == "jpeg2000":
        ds.compress(JPEG2000Lossless)
    image, created = ingest(_bytes(ds), origin="import")
    db.session.commit()
    assert created and image.source_format == "dicom"
    assert np.array_equal(_stored(image), plain)
    if variant == "monochrome1":  # bright air stored high: shown inverted, as on film
        raw = synthetic.radiograph(1, size=64, seed=1).astype(int)
        assert np.corrcoef(_stored(image).ravel(), 255 - raw.ravel())[0, 1] > 0.99
    assert (image.patient_age, image.patient_sex) == (65, "F") and image.patient_key.startswith("p-")
    record = db.session.get(Deidentification, image.id)
    assert record.patient_identity_removed == "YES" and record.view_position == "PA"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Modality": "CT"}, "Modality CT is not accepted; medal reads chest radiographs (CR, DX)"),
        ({"NumberOfFrames": 2}, "Multi-frame DICOM images are not accepted"),
        ({"BitsAllocated": 1, "BitsStored": 1, "HighBit": 0}, "1-bit DICOM images are not accepted"),
        ({"SamplesPerPixel": 3, "PhotometricInterpretation": "RGB"}, "Colour DICOM images are not accepted"),
        ({"BodyPartExamined": "SKULL"}, "BodyPartExamined SKULL is not a chest"),
    ],
)
def test_refused_dicom_is_a_415_naming_the_reason_and_stores_nothing(app, change, message):
    ds = identifying()
    for key, value in change.items():
        setattr(ds, key, value)
    with pytest.raises(IngestError) as refused:
        ingest(_bytes(ds), origin="import")
    assert refused.value.status == 415 and message in str(refused.value)
    assert db.session.execute(db.select(db.func.count()).select_from(Image)).scalar_one() == 0


def test_no_identifier_reaches_the_database_the_store_the_logs_or_mlflow(trained_app, home, caplog):
    caplog.set_level(logging.DEBUG)
    client = trained_app.test_client()
    data = _bytes(identifying())
    response = client.post(
        "/api/v1/images",
        headers=api_token(trained_app, "doctor"),
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(data), "upload.dcm")},
    )
    assert response.status_code == 201, response.get_json()
    assert db.session.get(Deidentification, response.get_json()["image_id"]) is not None
    refused = client.post(
        "/api/v1/images",
        headers=api_token(trained_app, "doctor"),
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(_bytes(_ct())), "ct.dcm")},
    )
    assert refused.status_code == 415 and "Modality CT" in refused.get_json()["error"]
    db.session.commit()
    db.engine.dispose()
    needles = [v.encode() for v in [*IDENTIFIERS.values(), *NESTED.values(), PRIVATE_VALUE, "Kowalczyk", "Johanna"]]
    needles += [v.encode() for v in _uids(identifying_original_uids(data))]
    files = [path for path in home.rglob("*") if path.is_file()]
    assert any(path.suffix == ".png" for path in files) and any("mlruns" in path.name for path in files)
    for path in files:  # the app database, the image store, the MLflow store and artefacts, any log file
        content = path.read_bytes()
        for needle in needles:
            assert needle not in content, (path.name, needle)
    for path in files:
        if path.suffix == ".db":
            dump = "\n".join(sqlite3.connect(path).iterdump()).encode()
            assert not [needle for needle in needles if needle in dump], path.name
    logged = caplog.text.encode()
    assert not [needle for needle in needles if needle in logged]


def test_the_image_api_and_the_report_show_what_was_done_and_no_identifier(trained_app):
    client = trained_app.test_client()
    headers = api_token(trained_app, "doctor")
    data = _bytes(identifying())
    image_id = client.post(
        "/api/v1/images",
        headers=headers,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(data), "upload.dcm")},
    ).get_json()["image_id"]
    record = client.get(f"/api/v1/images/{image_id}", headers=headers).get_json()["deidentification"]
    stored = db.session.get(Deidentification, image_id)
    assert record["profile"] == stored.profile and "Annex E" in record["profile"]
    assert record["method_codes"] == ["113100", "113108"] and record["patient_identity_removed"] == "YES"
    assert record["study_uid"] == stored.study_uid and record["study_uid"] not in _uids(identifying_original_uids(data))
    page = trained_app.test_client()
    login(page, "doctor")
    report = page.get(f"/images/{image_id}/report").get_data(as_text=True)
    assert "Annex E" in report and "113100, 113108" in report
    for shown in (client.get(f"/api/v1/images/{image_id}", headers=headers).get_data(as_text=True), report):
        assert not [value for value in IDENTIFIERS.values() if value in shown]
    png = client.post(
        "/api/v1/images",
        headers=headers,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(synthetic.png_bytes(synthetic.radiograph(0, seed=3))), "x.png")},
    ).get_json()["image_id"]
    assert client.get(f"/api/v1/images/{png}", headers=headers).get_json()["deidentification"] is None


def identifying_original_uids(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def _ct() -> Dataset:
    ds = identifying(seed=6)
    ds.Modality = "CT"
    return ds


def test_the_pseudonym_key_variable_is_not_taken_for_a_setting(home, monkeypatch):
    from webapp.config import load_settings

    monkeypatch.setenv("MEDAL_PSEUDONYM_KEY", "a key from the environment")
    settings = load_settings()  # an unknown MEDAL_* variable would stop start-up
    assert settings.dicom.modalities == ("CR", "DX")
