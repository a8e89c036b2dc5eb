"""DICOM de-identification (PS3.15 Annex E basic profile): what is kept, what dicognito and the Annex E
table do to the header, and the record of it kept per image."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import dicognito
import pydicom
from dicognito.anonymizer import Anonymizer
from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as annex_e
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from learning.decoding import DecodedImage, check_dicom, decode_dicom, read_dicom
from webapp.errors import Problem
from webapp.models import Deidentification
from webapp.services import services
from webapp.upload.pseudonyms import derived_secret, pseudonym

PROFILE = "DICOM PS3.15 Annex E basic application level confidentiality profile"
OPTIONS = (
    "retain patient characteristics: yes (age and sex; the birth date is removed)",
    "retain longitudinal temporal information: no (dates and times removed or emptied)",
    "clean descriptors: no (descriptions, comments and protocol names removed)",
    "retain device identity: no",
    "retain institution identity: no",
    "retain UIDs: no (study, series and instance UIDs replaced consistently under the installation key)",
    "retain safe private: no (all private tags removed)",
    "clean pixel data: no (images declaring burned-in annotation are refused)",
)
# PS3.16 CID 7050 codes for what was applied (written as DeidentificationMethodCodeSequence)
METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113108", "Retain Patient Characteristics Option"),
)
# DeidentificationMethod is LO (64 characters a value, several values allowed)
METHOD = (
    "DICOM PS3.15 Annex E basic profile",
    "Retain Patient Characteristics Option",
    f"medal, dicognito {dicognito.__version__}",
)
LIBRARY = f"dicognito {dicognito.__version__} + Annex E table of dicom-anonymizer (dicomfields_2026c)"
VIEW_POSITIONS = {"AP", "PA", "LL", "RL", "LLD", "RLD", "LLO", "RLO", "LPO", "RPO", "LAO", "RAO", "LATERAL"}
KEPT = {pydicom.datadict.tag_for_keyword(k) for k in ("PatientAge", "PatientSex")}  # retain patient characteristics
_AGE = re.compile(r"^(\d{1,3})([DWMY])$")


def _annex_e_actions() -> tuple[dict[int, str], list[tuple[int, int, int, int, str]]]:
    """Annex E table E.1-1 as tag -> action ("X" remove, "Z" empty, "D" dummy, "U" UID), from a
    maintained copy of the standard's table rather than a list kept here; masked rows (curves and
    overlays, 50xx/60xx) apart."""
    exact: dict[int, str] = {}
    masked: list[tuple[int, int, int, int, str]] = []
    for category in ("D_TAGS", "Z_TAGS", "X_TAGS", "U_TAGS", "Z_D_TAGS", "X_Z_TAGS", "X_D_TAGS", "X_Z_D_TAGS"):
        action = category.split("_TAGS")[0].replace("_", "")
        for tag in getattr(annex_e, category):
            if len(tag) > 2:
                masked.append((tag[0], tag[1], tag[2], tag[3], action))
            else:
                exact[(tag[0] << 16) | tag[1]] = action
    for tag in annex_e.X_Z_U_STAR_TAGS:
        exact[(tag[0] << 16) | tag[1]] = "XZU"
    return exact, masked


ANNEX_E, ANNEX_E_MASKED = _annex_e_actions()


def annex_e_action(tag: int) -> str | None:
    """The Annex E action letters for a tag (e.g. "X", "Z", "XZD", "U"), None when the profile keeps it."""
    action = ANNEX_E.get(tag)
    if action is not None:
        return action
    group, element = tag >> 16, tag & 0xFFFF
    for g, e, gmask, emask, masked_action in ANNEX_E_MASKED:
        if group & gmask == g & gmask and element & emask == e & emask:
            return masked_action
    return None


class DeidentificationError(Problem):
    """A DICOM header that cannot be de-identified safely: the image is not stored."""


@dataclass(frozen=True)
class Deidentified:
    """A de-identified dataset and the facts kept from it (nothing else of the original survives).

    `record` holds the columns of the image's Deidentification row; `site` is set only when
    config `dicom.site_map` maps the file's institution to a site name."""

    dataset: Dataset
    patient_key: str | None
    age: int | None
    sex: str | None
    view: str | None
    site: str | None
    record: dict[str, Any]

    def fill(self, meta):
        """An ImageMeta with the kept facts where the upload gave none (what the user typed wins)."""
        kept = {"patient_key": self.patient_key, "patient_age": self.age, "patient_sex": self.sex, "site": self.site}
        return dataclasses.replace(
            meta, **{name: value for name, value in kept.items() if getattr(meta, name) is None and value is not None}
        )


def read_and_deidentify(
    data: bytes, max_pixels: int, min_side: int, max_side: int
) -> tuple[DecodedImage, Deidentified]:
    """A DICOM upload checked against config `dicom:` (modality, body part, frames, colour, bits),
    decoded, and de-identified; ImageDecodeError or DeidentificationError (4xx) otherwise."""
    dataset = read_dicom(data)
    check_dicom(dataset, services().settings.dicom.rules)
    decoded = decode_dicom(dataset, max_pixels, min_side, max_side)
    return decoded, deidentify(dataset)


def deidentify(dataset: Dataset) -> Deidentified:
    """De-identify `dataset` in place and return it with the facts kept.

    First what must be kept is read (patient id -> keyed pseudonym, age (from PatientAge or the birth
    and study dates), sex, view position, the mapped site); then dicognito replaces every UID
    consistently (the same original UID always gives the same new one under this installation's key),
    names, IDs and dates; then every element at any depth that Annex E lists is removed or emptied,
    private tags are removed, and PatientIdentityRemoved / DeidentificationMethod are written."""
    kept = _kept_facts(dataset)
    try:
        Anonymizer(seed=derived_secret("dicognito-uid-salt")).anonymize(dataset)
        counts = _apply_annex_e(dataset)
    except Exception as error:  # the message may quote a header value: only its type is told
        raise DeidentificationError(
            f"The DICOM header cannot be de-identified ({type(error).__name__}); the image was not stored.", 400
        ) from None
    _mark(dataset, kept)
    record = {
        "profile": PROFILE,
        "options": list(OPTIONS),
        "method": "; ".join(METHOD),
        "method_codes": [code for code, _ in METHOD_CODES],
        "patient_identity_removed": "YES",
        "library": LIBRARY,
        "study_uid": str(dataset.get("StudyInstanceUID", "")) or None,
        "series_uid": str(dataset.get("SeriesInstanceUID", "")) or None,
        "sop_uid": str(dataset.get("SOPInstanceUID", "")) or None,
        "view_position": kept["view"],
        "actions": counts,
    }
    return Deidentified(dataset, kept["patient_key"], kept["age"], kept["sex"], kept["view"], kept["site"], record)


def _value(dataset: Dataset, keyword: str) -> str:
    try:
        value = dataset.get(keyword)
    except Exception:  # a value pydicom cannot convert is no fact to keep
        return ""
    return "" if value is None else str(value).strip()


def _kept_facts(dataset: Dataset) -> dict[str, Any]:
    settings = services().settings.dicom
    patient_id = _value(dataset, "PatientID")[:200]
    sex = _value(dataset, "PatientSex").upper()
    view = _value(dataset, "ViewPosition").upper()
    institution = " ".join(_value(dataset, "InstitutionName").split()).casefold()
    site_map = {" ".join(name.split()).casefold(): site for name, site in settings.site_map.items()}
    return {
        "patient_key": pseudonym(patient_id) if patient_id else None,
        "age": patient_age(dataset),
        "sex": sex if sex in ("M", "F", "O") else None,
        "view": view if view in VIEW_POSITIONS else None,
        "site": site_map.get(institution) if institution else None,
    }


def patient_age(dataset: Dataset) -> int | None:
    """Whole years: PatientAge ("045Y", "006M" ...), else the birth date against the study's date
    (StudyDate, else SeriesDate, AcquisitionDate, ContentDate). None when neither is usable."""
    match = _AGE.match(_value(dataset, "PatientAge").upper())
    if match:
        number, unit = int(match.group(1)), match.group(2)
        years = number if unit == "Y" else number // {"M": 12, "W": 52, "D": 365}[unit]
        return years if 0 <= years <= 130 else None
    born = _date(_value(dataset, "PatientBirthDate"))
    taken = next(
        (
            d
            for d in (_date(_value(dataset, k)) for k in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"))
            if d
        ),
        None,
    )
    if born is None or taken is None or taken < born:
        return None
    years = taken.year - born.year - ((taken.month, taken.day) < (born.month, born.day))
    return years if 0 <= years <= 130 else None


def _date(text: str) -> date | None:
    if not re.fullmatch(r"\d{8}", text):
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def _apply_annex_e(dataset: Dataset) -> dict[str, int]:
    """Every element the profile lists, at any depth, removed (X) or emptied (Z, and D, whose dummy
    would say nothing here); UIDs keep dicognito's consistent replacement (U, and D/Z on a UI)."""
    counts = {"removed": 0, "emptied": 0, "uids_replaced": 0, "private_removed": 0}

    def clean(ds: Dataset, element) -> None:
        if element.tag.is_private:
            del ds[element.tag]
            counts["private_removed"] += 1
            return
        action = annex_e_action(int(element.tag))
        if action is None or element.tag in KEPT:
            return
        if "X" in action:
            del ds[element.tag]
            counts["removed"] += 1
        elif element.VR == "UI":
            counts["uids_replaced"] += 1  # dicognito replaced it: the consistent mapping stays
        elif element.VR == "SQ":
            element.value = Sequence()
            counts["emptied"] += 1
        elif not element.is_empty:
            element.value = None
            counts["emptied"] += 1

    dataset.walk(clean)
    if getattr(dataset, "file_meta", None) is not None:
        dataset.file_meta.walk(clean)
    return counts


def _mark(dataset: Dataset, kept: Mapping[str, Any]) -> None:
    """What DICOM itself records about the de-identification, and the pseudonym as the patient's id."""
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = list(METHOD)
    codes = []
    for value, meaning in METHOD_CODES:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        codes.append(item)
    dataset.DeidentificationMethodCodeSequence = Sequence(codes)
    dataset.PatientID = kept["patient_key"] or ""
    dataset.PatientName = kept["patient_key"] or ""
    if kept["age"] is not None:
        dataset.PatientAge = f"{kept['age']:03d}Y"


def describe(record: Deidentification | None) -> dict | None:
    """An image's de-identification record as the API and the report show it; None for PNG/JPEG."""
    if record is None:
        return None
    return {
        "profile": record.profile,
        "options": list(record.options),
        "method": record.method,
        "method_codes": list(record.method_codes),
        "patient_identity_removed": record.patient_identity_removed,
        "library": record.library,
        "study_uid": record.study_uid,
        "series_uid": record.series_uid,
        "sop_uid": record.sop_uid,
        "view_position": record.view_position,
        "actions": dict(record.actions),
        "created_at": record.created_at.isoformat() + "Z",
    }
