"""Turning uploaded bytes into stored images: validation, decoding, de-duplication."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from learning.data import ImageDecodeError, decode_image, encode_png, is_dicom
from webapp.errors import Problem
from webapp.extensions import db
from webapp.models import Image, User
from webapp.services import services
from webapp.upload.pseudonyms import pseudonym

SEXES = {"M", "F", "O"}


class IngestError(Problem):
    """An upload or import that cannot be stored."""


STATUS_BY_KIND = {"unsupported": 415, "too_large": 413, "corrupt": 400}


@dataclass(frozen=True)
class ImageMeta:
    site: str | None = None
    patient_age: int | None = None
    patient_sex: str | None = None
    patient_key: str | None = None  # pseudonym of the patient id; the id itself is never kept

    @classmethod
    def from_form(cls, form) -> ImageMeta:
        """From an upload's form fields: site, patient_age, patient_sex, patient_id."""
        return cls.parse(form.get("site"), form.get("patient_age"), form.get("patient_sex"), form.get("patient_id"))

    @classmethod
    def parse(
        cls, site: str | None, age: str | int | None, sex: str | None, patient_id: str | None = None
    ) -> "ImageMeta":
        site = (site or "").strip() or None
        if site and len(site) > 80:
            raise IngestError("site must be at most 80 characters.")
        parsed_age = None
        if age not in (None, ""):
            try:
                parsed_age = int(age)
            except (TypeError, ValueError):
                raise IngestError("patient_age must be a whole number of years.") from None
            if not 0 <= parsed_age <= 130:
                raise IngestError("patient_age must be between 0 and 130.")
        sex = (sex or "").strip().upper() or None
        if sex and sex not in SEXES:
            raise IngestError("patient_sex must be one of M, F or O.")
        patient_id = (patient_id or "").strip()
        if len(patient_id) > 200:
            raise IngestError("patient_id must be at most 200 characters.")
        return cls(site, parsed_age, sex, pseudonym(patient_id) if patient_id else None)


def ingest(
    data: bytes,
    *,
    origin: str,
    meta: ImageMeta = ImageMeta(),
    user: User | None = None,
    split: str = "pool",
    reference_label: str | None = None,
) -> tuple[Image, bool]:
    """Store an image once. Returns (image, created); a re-upload of the same bytes is found."""
    sha = hashlib.sha256(data).hexdigest()
    existing = db.session.execute(db.select(Image).filter_by(sha256=sha)).scalar_one_or_none()
    if existing is not None:
        return existing, False
    settings = services().settings
    try:
        pixels = decode_image(data, settings.images.max_pixels)
    except ImageDecodeError as error:
        raise IngestError(str(error), STATUS_BY_KIND.get(error.kind, 400)) from None
    names = services().class_names
    if reference_label is not None and reference_label not in names:
        raise IngestError(f"Unknown class {reference_label!r}; known: {', '.join(names)}.")
    path = services().store.put(sha, encode_png(pixels))
    image = Image(
        sha256=sha,
        path=path,
        width=int(pixels.shape[1]),
        height=int(pixels.shape[0]),
        source_format="dicom" if is_dicom(data) else _bitmap_format(data),
        origin=origin,
        split=split,
        reference_label=reference_label,
        site=meta.site or settings.images.default_site,
        patient_age=meta.patient_age,
        patient_sex=meta.patient_sex,
        patient_key=meta.patient_key,
        uploaded_by=user,
    )
    db.session.add(image)
    try:
        db.session.flush()
    except IntegrityError:  # the same bytes arrived at the same moment from another request
        db.session.rollback()
        return db.session.execute(db.select(Image).filter_by(sha256=sha)).scalar_one(), False
    return image, True


def _bitmap_format(data: bytes) -> str:
    return "png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "jpeg"
