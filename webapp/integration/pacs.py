"""The hospital PACS over DICOMweb: QIDO-RS finds new CR/DX studies, WADO-RS pulls them into the review pool
through the normal ingest path, STOW-RS stores a heat map back into its study as a Secondary Capture.

No original identifier is kept: a pulled study is known only by a keyed hash of its StudyInstanceUID, and a
push finds the study again by querying the PACS and matching that hash."""

from __future__ import annotations

import io
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import requests
from dicomweb_client.api import DICOMwebClient
from PIL import Image as PILImage

from webapp import audit
from webapp.config import PacsSettings
from webapp.errors import Problem
from webapp.extensions import db
from webapp.models import AuditEvent, Image, PacsImage, PacsStudy, User, utcnow
from webapp.services import services
from webapp.upload.pseudonyms import keyed_hash

log = logging.getLogger(__name__)

STUDY_UID = "0020000D"
SERIES_UID = "0020000E"
SOP_UID = "00080018"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
SERIES_DESCRIPTION = "medal heat map (AI, not for diagnosis alone)"
# the patient and study modules a pushed Secondary Capture copies from the PACS's own answer, at push time
STUDY_FIELDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
)
PAGE = 1000  # studies per QIDO-RS page (Orthanc 1.10 answers an offset with ModalitiesInStudy with nothing)


class PacsError(Problem):
    """The PACS cannot be used: not configured, unreachable, or it refused medal's credentials."""


@dataclass
class PullReport:
    studies_found: int = 0  # matching studies the PACS listed
    studies_pulled: int = 0  # pulled completely now
    studies_partial: int = 0  # some instances could not be retrieved: retried next pull
    studies_known: int = 0  # pulled before: skipped
    stored: int = 0  # new images in the review pool
    existing: int = 0  # the same bytes were already stored
    refused: dict[str, int] = field(default_factory=dict)  # ingest's reason -> instances
    failed: int = 0  # instances that could not be retrieved
    since: str | None = None
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"{self.studies_found} studies found: {self.studies_pulled} pulled, {self.studies_partial} partly "
            f"(retried next time), {self.studies_known} already pulled; {self.stored} images stored, "
            f"{self.existing} already present, {sum(self.refused.values())} refused, {self.failed} not retrieved"
        )

    def as_dict(self) -> dict:
        return asdict(self)


def settings() -> PacsSettings:
    return services().settings.pacs


def modalities() -> tuple[str, ...]:
    """The DICOM engineer's `dicom.modalities` when configured, else `pacs.modalities`."""
    dicom = getattr(services().settings, "dicom", None)
    return tuple(getattr(dicom, "modalities", None) or settings().modalities)


def shown_url(url: str) -> str:
    """The URL without any user:password part, for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def study_key(study_uid: str) -> str:
    """A keyed hash of the original StudyInstanceUID (a key derived from the installation's for this use)."""
    return keyed_hash(study_uid, "study-uid")


def connect(cfg: PacsSettings | None = None) -> DICOMwebClient:
    cfg = cfg or settings()
    if not cfg.url:
        raise PacsError("No PACS is configured: set pacs.url (MEDAL_PACS__URL) to its DICOMweb root.", 409)
    session = requests.Session()
    if cfg.username:
        session.auth = (cfg.username, cfg.password.get_secret_value())
    return DICOMwebClient(cfg.url.rstrip("/"), session=session, timeout=cfg.timeout_seconds)


def _problem(error: requests.RequestException, doing: str) -> PacsError:
    """A clear message for the user, without the password or a traceback."""
    url = shown_url(settings().url)
    response = getattr(error, "response", None)
    if response is not None and response.status_code in (401, 403):
        return PacsError(
            f"The PACS at {url} refused medal's credentials (HTTP {response.status_code}) while {doing}: "
            "check pacs.username and MEDAL_PACS__PASSWORD.",
            502,
        )
    if response is not None:
        return PacsError(f"The PACS at {url} answered HTTP {response.status_code} while {doing}.", 502)
    if isinstance(error, requests.Timeout):
        return PacsError(f"The PACS at {url} did not answer within {settings().timeout_seconds:g} s ({doing}).", 504)
    return PacsError(f"Cannot reach the PACS at {url} ({doing}): {type(error).__name__}.", 503)


def _value(attributes: dict, tag: str) -> str | None:
    values = attributes.get(tag, {}).get("Value") or []
    return str(values[0]) if values else None


def _uid(attributes: dict, tag: str) -> str:
    """A UID the PACS must send (ValueError when it did not)."""
    value = _value(attributes, tag)
    if value is None:
        raise ValueError(f"The PACS sent no value for tag {tag}.")
    return value


def find_studies(client: DICOMwebClient, since: date | None, fields: tuple[str, ...] = ()) -> Iterator[dict]:
    """QIDO-RS: each study of an accepted modality (dated `since` or later) once, as DICOM JSON."""
    seen: set[str] = set()
    for modality in modalities():
        filters = {"ModalitiesInStudy": modality}
        if since is not None:
            filters["StudyDate"] = f"{since:%Y%m%d}-"
        offset = 0
        while True:
            try:
                page = client.search_for_studies(
                    search_filters=filters, fields=list(fields) or None, limit=PAGE, offset=offset
                )
            except requests.RequestException as error:
                raise _problem(error, "searching for studies") from None
            new = 0
            for study in page:
                uid = _value(study, STUDY_UID)
                if uid and uid not in seen:
                    seen.add(uid)
                    new += 1
                    yield study
            if len(page) < PAGE or new == 0:  # a server that ignores offset would repeat its first page
                break
            offset += PAGE


def default_since() -> date | None:
    """The day of the last successful pull, less `lookback_days` (a study can reach the PACS days after
    its StudyDate); None before the first pull: everything."""
    events = db.session.execute(
        db.select(AuditEvent).filter_by(kind="pacs_pull").order_by(AuditEvent.id.desc()).limit(50)
    ).scalars()
    for event in events:
        if (event.details or {}).get("ok"):
            return event.created_at.date() - timedelta(days=settings().lookback_days)
    return None


def pull(since: date | None = None, actor: User | None = None) -> PullReport:
    """Pull every accepted study not pulled before into the review pool; one audit event "pacs_pull"."""
    started = time.perf_counter()
    client = connect()
    since = since if since is not None else default_since()
    report = PullReport(since=since.isoformat() if since else None)
    try:
        for study in find_studies(client, since):
            report.studies_found += 1
            _pull_study(client, _uid(study, STUDY_UID), report)
    except PacsError as error:
        db.session.rollback()
        report.seconds = round(time.perf_counter() - started, 3)
        audit.record(audit.Kind.PACS_PULL, actor, reason=str(error), details={"ok": False, **report.as_dict()})
        db.session.commit()
        raise
    report.seconds = round(time.perf_counter() - started, 3)
    audit.record(audit.Kind.PACS_PULL, actor, details={"ok": True, **report.as_dict()})
    db.session.commit()
    log.info("pacs pull: %s", report.line())
    return report


def _pull_study(client: DICOMwebClient, uid: str, report: PullReport) -> None:
    key = study_key(uid)
    row = db.session.execute(db.select(PacsStudy).filter_by(study_key=key)).scalar_one_or_none()
    if row is not None and row.status == "pulled":
        report.studies_known += 1
        return
    try:
        instances = client.search_for_instances(study_instance_uid=uid, get_remaining=True)
    except requests.RequestException as error:
        raise _problem(error, "listing a study's instances") from None
    if row is None:  # stored at once as partial: a pull that dies midway retries the study
        row = PacsStudy(study_key=key, status="partial")
        db.session.add(row)
        db.session.commit()
    counts: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for instance in instances:
        try:
            series, sop = _uid(instance, SERIES_UID), _uid(instance, SOP_UID)
            data = _instance_bytes(client.retrieve_instance(uid, series, sop))
        except (requests.RequestException, ValueError) as error:
            log.warning("pacs: an instance could not be retrieved (%s)", type(error).__name__)
            counts["failed"] += 1
            continue
        outcome = _store(data, row)
        if outcome in ("stored", "existing", "failed"):
            counts[outcome] += 1
        else:
            refused[outcome] += 1
            log.info("pacs: an instance was refused: %s", outcome)
    row.instances, row.stored, row.existing = len(instances), counts["stored"], counts["existing"]
    row.refused, row.failed = sum(refused.values()), counts["failed"]
    row.status = "partial" if row.failed else "pulled"
    row.pulled_at = utcnow()
    db.session.commit()
    report.studies_pulled += row.status == "pulled"
    report.studies_partial += row.status == "partial"
    report.stored += row.stored
    report.existing += row.existing
    report.failed += row.failed
    for reason, count in refused.items():
        report.refused[reason] = report.refused.get(reason, 0) + count


def _instance_bytes(dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _serving() -> bool:
    from webapp.inference.serving import NoChampion

    try:
        services().server.current()
    except NoChampion:
        return False
    return True


def _store(data: bytes, study: PacsStudy) -> str:
    """One instance through the normal ingest path (de-identification and the modality and body part checks
    run there): with a prediction when a model serves, else for the pool-scoring job. Returns "stored",
    "existing", "failed" or the reason it was refused."""
    from webapp.upload.ingest import ImageMeta, ingest, upload

    meta = ImageMeta(site=settings().site)
    try:
        if _serving():
            uploaded = upload(data, origin="pacs", meta=meta)
            image, created = uploaded.image, uploaded.created
        else:
            image, created = ingest(data, origin="pacs", meta=meta)
    except Problem as error:
        db.session.rollback()
        if error.status >= 500:  # no model could be loaded, say: try again next pull
            return "failed"
        return str(error)
    db.session.flush()
    if db.session.get(PacsImage, image.id) is None:
        db.session.add(PacsImage(image_id=image.id, study_id=study.id))
    db.session.commit()
    return "stored" if created else "existing"


@dataclass(frozen=True)
class Pushed:
    image_id: int
    model_version: int
    series_uid: str  # the new series medal made; the original study's UID is never returned or kept


def push(image_id: int, actor: User | None = None) -> Pushed:
    """STOW-RS the image's heat map as a Secondary Capture into its original study in the PACS."""
    from webapp.inference import explanations, predictions

    image = db.session.get(Image, image_id)
    if image is None:
        raise Problem(f"Image {image_id} does not exist.", 404)
    link = db.session.get(PacsImage, image_id)
    if link is None:
        raise Problem(f"Image {image_id} did not come from the PACS; only pulled images can be pushed back.", 409)
    prediction = predictions.latest(image_id)
    if prediction is None or explanations.heatmap_path(prediction) is None:
        if not _serving():
            raise Problem(f"Image {image_id} has no heat map yet and no model is serving to make one.", 409)
        prediction = predictions.predict(image)
        db.session.commit()
    overlay = explanations.heatmap_path(prediction)
    if overlay is None:
        raise Problem(f"Image {image_id} has no heat map.", 409)
    client = connect()
    study = next((s for s in find_studies(client, None, STUDY_FIELDS) if _matches(s, link.study.study_key)), None)
    if study is None:
        raise Problem(f"The original study of image {image_id} is no longer in the PACS.", 404)
    dataset = secondary_capture(study, np.asarray(PILImage.open(overlay).convert("RGB")))
    try:
        client.store_instances([dataset], study_instance_uid=_value(study, STUDY_UID))
    except requests.RequestException as error:
        raise _problem(error, "storing the heat map") from None
    audit.record(
        audit.Kind.PACS_PUSH, actor, model_version=prediction.model_version, details={"image_id": image_id, "ok": True}
    )
    db.session.commit()
    return Pushed(image_id, prediction.model_version, str(dataset.SeriesInstanceUID))


def _matches(study: dict, key: str) -> bool:
    uid = _value(study, STUDY_UID)
    return uid is not None and study_key(uid) == key


def secondary_capture(study: dict, rgb: np.ndarray):
    """A Secondary Capture (WSD) of the RGB overlay in the original study: new series and instance UIDs,
    the patient and study modules as the PACS gave them just now."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    source = Dataset.from_json(study)
    now = utcnow()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(SECONDARY_CAPTURE)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    for keyword in STUDY_FIELDS:
        ds.setdefault(keyword, source.get(keyword, ""))  # type 2: present, maybe empty
    ds.StudyInstanceUID = source.StudyInstanceUID
    ds.SOPClassUID, ds.SOPInstanceUID = SECONDARY_CAPTURE, meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber, ds.InstanceNumber = 9001, 1
    ds.Modality, ds.ConversionType = "OT", "WSD"
    ds.SeriesDescription = SERIES_DESCRIPTION
    ds.ImageComments = "Grad-CAM heat map made by medal; an AI aid, not for diagnosis alone."
    ds.Manufacturer = "medal"
    ds.BurnedInAnnotation = "NO"
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.Rows, ds.Columns = rgb.shape[:2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
    return ds
