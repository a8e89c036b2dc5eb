"""Turning uploaded bytes into stored images: validation, decoding, de-duplication."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError

from learning.decoding import DecodedImage, ImageDecodeError, decode_radiograph, encode_png, is_dicom
from webapp.classes import catalog
from webapp.clinical import records as clinical_records
from webapp.errors import Problem
from webapp.extensions import db
from webapp.inference import explanations, predictions
from webapp.models import Deidentification, Image, Prediction, User
from webapp.processes import pause_point
from webapp.services import services
from webapp.upload import deid, reupload
from webapp.upload.pseudonyms import pseudonym
from webapp.upload.reupload import Completion

SEXES = {"M", "F", "O"}
AGES = (0, 130)  # patient_age in whole years, inclusive


class IngestError(Problem):
    """An upload or import that cannot be stored."""


STATUS_BY_KIND = {"unsupported": 415, "too_large": 413, "corrupt": 400}


@dataclass(frozen=True)
class ImageMeta:
    site: str | None = None
    patient_age: int | None = None
    patient_sex: str | None = None
    patient_key: str | None = None  # pseudonym of the patient id; the id itself is never kept
    # clinical fields (webapp/clinical/records.py FIELDS), stored with the image row or not at all
    clinical: dict[str, Any] | None = field(default=None, hash=False)

    @classmethod
    def from_form(cls, form) -> ImageMeta:
        """From an upload's form fields: site, patient_age, patient_sex, patient_id and the clinical fields."""
        meta = cls.parse(form.get("site"), form.get("patient_age"), form.get("patient_sex"), form.get("patient_id"))
        clinical = clinical_records.from_form(form)  # a bad value is a 400 before anything is stored
        return cls(meta.site, meta.patient_age, meta.patient_sex, meta.patient_key, clinical or None)

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
            if not AGES[0] <= parsed_age <= AGES[1]:
                raise IngestError(f"patient_age must be between {AGES[0]} and {AGES[1]}.")
        sex = (sex or "").strip().upper() or None
        if sex and sex not in SEXES:
            raise IngestError("patient_sex must be one of M, F or O.")
        patient_id = (patient_id or "").strip()
        if len(patient_id) > 200:
            raise IngestError("patient_id must be at most 200 characters.")
        return cls(site, parsed_age, sex, pseudonym(patient_id) if patient_id else None)


@dataclass(frozen=True)
class Prepared:
    """Uploaded bytes checked and decoded, ready to store: no row and no file yet."""

    sha256: str
    decoded: DecodedImage
    png: bytes  # the normalised copy the store keeps (8-bit grayscale, bounded size)
    dicom: deid.Deidentified | None = None  # a DICOM's kept facts and de-identification record


def prepare(data: bytes, sha256: str | None = None) -> Prepared:
    """Decode and bound an upload; raises IngestError (4xx) for anything that is not a usable image."""
    images = services().settings.images
    dicom = None
    try:
        if is_dicom(data):  # checked (config `dicom:`), decoded, then de-identified before anything is kept
            decoded, dicom = deid.read_and_deidentify(data, images.max_pixels, images.min_side, images.store_max_side)
        else:
            decoded = decode_radiograph(data, images.max_pixels, images.min_side, images.store_max_side)
    except ImageDecodeError as error:
        raise IngestError(str(error), STATUS_BY_KIND.get(error.kind, 400)) from None
    return Prepared(sha256 or hashlib.sha256(data).hexdigest(), decoded, encode_png(decoded.pixels), dicom)


def _find(sha256: str) -> Image | None:
    return db.session.execute(db.select(Image).filter_by(sha256=sha256)).scalar_one_or_none()


def _new_image(
    prepared: Prepared, path: str, origin: str, meta: ImageMeta, user: User | None, split: str, label: str | None
) -> Image:
    if prepared.dicom is not None:
        meta = prepared.dicom.fill(meta)  # age, sex, pseudonym and mapped site from the header
    image = Image(
        sha256=prepared.sha256,
        path=path,
        width=prepared.decoded.width,  # as the file declared it; the stored copy may be smaller
        height=prepared.decoded.height,
        source_format=prepared.decoded.source_format,
        origin=origin,
        split=split,
        reference_label=label,
        site=meta.site or services().settings.images.default_site,
        patient_age=meta.patient_age,
        patient_sex=meta.patient_sex,
        patient_key=meta.patient_key,
        uploaded_by=user,
    )
    if prepared.dicom is not None:  # stored with the image row, in its transaction
        image.deidentification = Deidentification(**prepared.dicom.record)
    return image


def ingest(
    data: bytes,
    *,
    origin: str,
    meta: ImageMeta = ImageMeta(),
    user: User | None = None,
    split: str = "pool",
    reference_label: str | None = None,
) -> tuple[Image, bool]:
    """Store an image once, without a prediction (imports: the pool is scored by a job).
    Returns (image, created); a re-upload of the same bytes is found. The caller commits."""
    sha = hashlib.sha256(data).hexdigest()
    existing = _find(sha)
    if existing is not None:
        return existing, False
    names = services().class_names
    if reference_label is not None:
        named, reference_label = reference_label, catalog.resolve(reference_label, names)
        if reference_label is None:
            raise IngestError(f"Unknown class {named!r}; known: {', '.join(names)}.")
    clinical = _clinical(meta)
    prepared = prepare(data, sha)
    store = services().store
    had_file = store.exists(sha)
    image = _new_image(prepared, store.put(sha, prepared.png), origin, meta, user, split, reference_label)
    try:
        with db.session.begin_nested():  # a savepoint: a clash never rolls back the caller's earlier rows
            db.session.add(image)
            _add_clinical(image, clinical, user)
    except IntegrityError:  # the same bytes arrived at the same moment from another request
        return db.session.execute(db.select(Image).filter_by(sha256=sha)).scalar_one(), False
    except BaseException:
        if not had_file:
            store.remove(sha)
        raise
    return image, True


def _clinical(meta: ImageMeta) -> dict[str, Any]:
    """The clinical values validated (again: CSV rows arrive raw); a bad one is a 400 before any file."""
    try:
        return {k: v for k, v in clinical_records.parse(meta.clinical).items() if v is not None}
    except Problem as error:
        raise IngestError(str(error), error.status, **error.details) from None


def _add_clinical(image: Image, clinical: dict[str, Any], user: User | None) -> None:
    """The record joins the image row's transaction: both are stored or neither is."""
    if clinical:
        db.session.flush()  # the image's id
        clinical_records.save(image.id, clinical, user)


@dataclass(frozen=True)
class Uploaded:
    image: Image
    prediction: Prediction
    created: bool
    completion: Completion | None = None  # a re-upload: what its typed fields added to the study, what was kept


def upload(data: bytes, *, origin: str, meta: ImageMeta = ImageMeta(), user: User | None = None) -> Uploaded:
    """An upload with its prediction by the serving champion, all or nothing: the image row, its
    file and the prediction are stored together, or none of them is.

    The answer waits for one forward pass only. The heavy work before it (decoding, the forward
    pass) runs outside any transaction, so one large upload never holds the database; the rows are
    written in one short transaction at the end. The heat map (Grad-CAM and its overlay) is computed
    after the commit, in the background, and stored on its own (`explanations`)."""
    started = time.perf_counter()
    sha = hashlib.sha256(data).hexdigest()
    served = services().server.current()  # 503 before anything is stored when no model serves
    existing = _find(sha)
    db.session.commit()  # end the read (and any pending write of the request) before the heavy work
    clinical = _clinical(meta)
    if existing is not None:
        return _known(existing, meta, clinical, user)
    prepared = prepare(data, sha)
    predicted = predictions.predict_pixels(served, prepared.decoded.pixels, started)
    store = services().store
    had_file = store.exists(sha)
    try:
        image = _new_image(prepared, store.put(sha, prepared.png), origin, meta, user, "pool", None)
        db.session.add(image)
        _add_clinical(image, clinical, user)
        prediction = predictions.add_predicted(image, predicted)
        db.session.commit()
    except IntegrityError:  # the same bytes arrived at the same moment: the other request's rows stand
        db.session.rollback()
        return _known(db.session.execute(db.select(Image).filter_by(sha256=sha)).scalar_one(), meta, clinical, user)
    except BaseException:
        db.session.rollback()
        if not had_file:
            store.remove(sha)
        raise
    pause_point("upload:predicted")  # test hook: the prediction is stored, its heat map not yet
    explanations.start(prediction.id)
    return Uploaded(image, prediction, True)


def _known(image: Image, meta: ImageMeta, clinical: dict[str, Any], user: User | None) -> Uploaded:
    """A re-upload: the stored image with the serving version's prediction (made now if missing), and
    the fields typed with it added where the study has none (`reupload`); no second file or row.
    A gold image awaiting its blind reads keeps its prediction to itself, whoever sends it again,
    and is left as it was."""
    from webapp.gold.goldset import is_blind

    if is_blind(image):
        raise IngestError(
            "This image is already stored and awaits independent reads; its prediction is withheld until then.", 409
        )
    prediction = predictions.predict(image)
    completion = reupload.complete(image, meta, clinical, user)
    db.session.commit()
    if not explanations.ready(prediction):
        explanations.start(prediction.id)
    return Uploaded(image, prediction, False, completion)
