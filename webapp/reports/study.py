"""Study reports: what a study's report says, its status (preliminary, final, amended), the revisions
issued so far (each kept, with its PDF) and a doctor's amendment of the final label."""

from __future__ import annotations

import base64
import hashlib
import io
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from flask import current_app, render_template
from PIL import Image as PILImage
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from assistant.facts import DISCLAIMER, Facts, pct
from assistant.plain_language import report_summary
from webapp import audit
from webapp.assistant.facts import GoldMeasures, facts_for
from webapp.auth import access, signatures
from webapp.auth.signatures import Signer
from webapp.classes import catalog
from webapp.clinical.records import describe, for_image
from webapp.config import ReportSettings
from webapp.errors import Problem
from webapp.extensions import db
from webapp.files import write_atomic
from webapp.gold import goldset
from webapp.inference import doubt, explanations, predictions
from webapp.models import (
    REVIEW_LABEL,
    GateReport,
    Image,
    Label,
    LabelAmendment,
    Prediction,
    StudyReport,
    User,
    utcnow,
)
from webapp.services import services

log = logging.getLogger(__name__)
PRELIMINARY, FINAL, AMENDED = "preliminary", "final", "amended"
PDF_IMAGE_PX = 900  # longest side of the pictures embedded in the PDF: sharp in print, a small file
CSS = Path(__file__).resolve().parent.parent / "static" / "report.css"
MAX_REASON = 1000


class ReportError(Problem):
    """A report action that cannot be done as asked."""


@dataclass(frozen=True)
class Confirmation:
    """Where the study's label stands: who confirmed (or corrected) it, and when; who signs it, and
    the findings and impression the reporting doctor wrote."""

    status: str
    label: str | None = None
    labeled_by: str | None = None  # usernames, as the revisions and FHIR record them
    labeled_at: datetime | None = None
    reason: str | None = None  # the amendment's reason
    original_label: str | None = None  # what the doctor first answered, when amended
    signers: tuple[Signer, ...] = ()  # full names and job titles, as the report is signed
    findings: str | None = None
    impression: str | None = None
    original: Confirmation | None = None  # the report as first confirmed, when amended

    @property
    def signed_by(self) -> str:
        return " and ".join(str(signer) for signer in self.signers) or (self.labeled_by or "")


@dataclass(frozen=True)
class GoldFigures:
    class_name: str
    sensitivity: float
    specificity: float
    size: int
    gate_report_id: int


@dataclass
class StudyContent:
    """Everything a report shows, gathered once for the page, the PDF and the FHIR export alike."""

    image: Image
    prediction: Prediction | None
    confirmation: Confirmation
    gold: GoldFigures | None
    clinical: list[str] = field(default_factory=list)
    summary: str = ""

    @property
    def patient_ref(self) -> str | None:
        """The pseudonym shortened: enough to tell studies apart on paper, never the patient id."""
        key = self.image.patient_key
        return f"{key[:8]}…" if key else None

    @property
    def ranking(self) -> list[tuple[str, float]]:
        if self.prediction is None:
            return []
        return sorted(self.prediction.probabilities.items(), key=lambda kv: kv[1], reverse=True)

    @property
    def call(self) -> doubt.Call | None:
        """The model's call as pages read it: one class, or uncertain between two (config `doubt`)."""
        if self.prediction is None:
            return None
        return doubt.read(self.prediction.probabilities, services().settings.doubt)

    @property
    def suggestion(self) -> str:
        """The model's call in words: "Normal (53.4%)", or "uncertain between Normal and Pneumonia"."""
        call, prediction = self.call, self.prediction
        if call is None or prediction is None:
            return "no prediction yet"
        if call.between:
            first, second = call.between
            return f"uncertain between {catalog.display(first)} and {catalog.display(second)}"
        return f"{catalog.display(call.top)} ({pct(prediction.confidence)})"

    @property
    def impression(self) -> str:
        """The reporting doctor's impression; where they wrote none, the final label says it. An
        amended report's impression is its new label: the first impression argued for the old one."""
        c = self.confirmation
        if c.status == PRELIMINARY:
            return self.conclusion
        return c.impression or f"{catalog.display(c.label or '')}."

    @property
    def conclusion(self) -> str:
        """One line for the report's conclusion (and FHIR's DiagnosticReport.conclusion)."""
        c = self.confirmation
        if c.status == PRELIMINARY:
            if self.prediction is None:
                return "Awaiting a prediction and a doctor's review."
            verb = "is" if self.call and self.call.uncertain else "suggests"
            return f"Preliminary: the model {verb} {self.suggestion}; not yet confirmed by a doctor."
        text_ = f"Doctor's final label: {catalog.display(c.label or '')} (by {c.signed_by})."
        if c.status == AMENDED:
            text_ += f" Amended from {catalog.display(c.original_label or '')}: {c.reason}"
        return text_


# --- status -----------------------------------------------------------------------------------


def _review_label(image_id: int) -> Label | None:
    return db.session.execute(
        db.select(Label).filter_by(image_id=image_id).where(text(REVIEW_LABEL)).order_by(Label.id).limit(1)
    ).scalar_one_or_none()


def _latest_amendment(image_id: int) -> LabelAmendment | None:
    return db.session.execute(
        db.select(LabelAmendment).filter_by(image_id=image_id).order_by(LabelAmendment.id.desc()).limit(1)
    ).scalar_one_or_none()


def _confirmed(image: Image) -> Confirmation:
    """The doctor's answer without amendments: the review label, or a gold image's final label."""
    if image.is_gold:
        gold = image.gold
        if gold is None or gold.status != "final":
            return Confirmation(PRELIMINARY)
        if gold.adjudicated_by_id:
            readers = [db.session.get_one(User, gold.adjudicated_by_id)]
        else:
            readers = [read.user for read in goldset.reads(image.id)]
        by = " and ".join(reader.username for reader in readers) or "the gold set"
        signers = tuple(signatures.of(reader) for reader in readers)
        return Confirmation(FINAL, gold.final_label, by, gold.finalized_at, signers=signers)
    label = _review_label(image.id)
    if label is None or label.unsure:  # a doctor who could not decide signs nothing off
        return Confirmation(PRELIMINARY)
    return Confirmation(
        FINAL,
        label.label,
        label.user.username,
        label.created_at,
        signers=(signatures.of(label.user),),
        findings=label.findings,
        impression=label.impression,
    )


def confirmation(image: Image) -> Confirmation:
    confirmed = _confirmed(image)
    amendment = _latest_amendment(image.id) if confirmed.status == FINAL else None
    if amendment is None:
        return confirmed
    return Confirmation(
        AMENDED,
        amendment.label,
        amendment.amended_by.username,
        amendment.created_at,
        amendment.reason,
        confirmed.label,
        signers=(signatures.of(amendment.amended_by),),
        findings=confirmed.findings,  # what was seen stands; the amendment changes the conclusion
        original=confirmed,
    )


def status(image_id: int) -> str:
    """preliminary until a doctor confirms, then final; amended after a correction."""
    return confirmation(goldset.visible_image(image_id)).status


# --- content ----------------------------------------------------------------------------------


def gold_figures(version: int, class_name: str) -> GoldFigures | None:
    """The version's gold-set sensitivity and specificity for a class, from its latest gate report
    (as candidate, else as the champion it was compared with)."""
    for column, metrics in (
        (GateReport.model_version, GateReport.candidate_metrics),
        (GateReport.champion_version, GateReport.champion_metrics),
    ):
        report = db.session.execute(
            db.select(GateReport).where(column == version).order_by(GateReport.id.desc()).limit(1)
        ).scalar_one_or_none()
        if report is None:
            continue
        found = getattr(report, metrics.key) or {}
        per_class = found.get("per_class", {}).get(class_name)
        if per_class and int(found.get("n") or 0) > 0:  # a gate run on an empty gold set measured nothing
            return GoldFigures(
                class_name, float(per_class["sensitivity"]), float(per_class["specificity"]), int(found["n"]), report.id
            )
    return None


def _clinical_lines(image_id: int) -> list[str]:
    return list(describe(for_image(image_id)))


def facts(content: StudyContent) -> Facts | None:
    """The assistant's facts for the report's prediction, built as the chat builds them, with the final
    label stated plainly (the report is read by many, so no "your label") and the report's gold figures."""
    prediction = content.prediction
    if prediction is None:
        return None
    gold, c = content.gold, content.confirmation
    labels = [] if c.status == PRELIMINARY else [f"The doctor's final label: {c.label}."]
    measured = GoldMeasures()
    if gold is not None:
        measured = GoldMeasures(gold.size, {"sensitivity": gold.sensitivity, "specificity": gold.specificity})
    return facts_for(prediction, labels=labels, gold=measured)


def plain_summary(content: StudyContent) -> str:
    """ "In plain words", from the final label (an amendment's included), never the model's call
    where a doctor has answered: after an amendment it must not speak of the class amended away."""
    c, call = content.confirmation, content.call
    final = None if c.status == PRELIMINARY else c.label
    names = set(content.prediction.probabilities if content.prediction else ()) | ({final} if final else set())
    return report_summary(
        final,
        facts(content),
        displays={name: catalog.display(name) for name in names},
        between=call.between if call else None,
        amended=c.status == AMENDED,
    )


def gather(image: Image) -> StudyContent:
    prediction = predictions.latest(image.id)
    content = StudyContent(
        image=image,
        prediction=prediction,
        confirmation=confirmation(image),
        gold=gold_figures(prediction.model_version, prediction.predicted_class) if prediction else None,
        clinical=_clinical_lines(image.id),
    )
    content.summary = plain_summary(content)
    return content


# --- rendering --------------------------------------------------------------------------------


def _png_data_uri(path: Path) -> str:
    with PILImage.open(path) as picture:
        # the heat map keeps its alpha: it is laid over the radiograph
        small = picture.copy() if picture.mode in ("L", "RGB", "RGBA") else picture.convert("RGBA")
        small.thumbnail((PDF_IMAGE_PX, PDF_IMAGE_PX), PILImage.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def pictures(content: StudyContent) -> tuple[str, str | None]:
    """The radiograph and its heat-map overlay as data: URIs, so the PDF needs no fetch."""
    image_uri = _png_data_uri(services().store.path(content.image.path))
    overlay = explanations.heatmap_path(content.prediction) if content.prediction else None
    return image_uri, _png_data_uri(overlay) if overlay else None


def header() -> ReportSettings:
    """The institution, department and address the report is headed with (config.yaml `report`)."""
    return services().settings.report


def render_html(content: StudyContent, report: StudyReport | None, pdf: bool, **page) -> str:
    """The one template for the page and the PDF; `pdf` picks the print layout and data: images."""
    image_src, overlay_src = pictures(content) if pdf else (None, None)
    return render_template(
        "reports/study.html",
        pdf=pdf,
        c=content,
        report=report,
        image_src=image_src,
        overlay_src=overlay_src,
        notice=DISCLAIMER,
        header=header(),
        **page,
    )


def local_only():
    """WeasyPrint's URL fetcher for reports: data: URIs only, so a report never reaches the network
    or the disk (everything it shows is embedded)."""
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols={"data"}, allow_redirects=False, timeout=5)


def render_pdf(html: str) -> bytes:
    from PIL import ImageFile
    from weasyprint import CSS as Stylesheet
    from weasyprint import HTML

    ImageFile.LOAD_TRUNCATED_IMAGES = False  # WeasyPrint turns it on for the process at import; uploads need it off
    fetcher = local_only()
    return HTML(string=html, url_fetcher=fetcher).write_pdf(
        stylesheets=[Stylesheet(filename=str(CSS), url_fetcher=fetcher)]
    )


# --- revisions --------------------------------------------------------------------------------


def pdf_file(content_hash: str) -> Path:
    return Path(current_app.config["MEDAL_HOME"]) / "reports" / content_hash[:2] / f"{content_hash}.pdf"


def revisions(image_id: int) -> list[StudyReport]:
    """Every issued revision of the study's report, newest first."""
    return list(
        db.session.execute(
            db.select(StudyReport).filter_by(image_id=image_id).order_by(StudyReport.revision.desc())
        ).scalars()
    )


def _matches(report: StudyReport | None, content: StudyContent) -> bool:
    c = content.confirmation
    prediction_id = content.prediction.id if content.prediction else None
    return report is not None and (report.status, report.label, report.labeled_by, report.prediction_id) == (
        c.status,
        c.label,
        c.labeled_by,
        prediction_id,
    )


def _add_revision(content: StudyContent, revision: int) -> StudyReport:
    """Add the revision's row, then render its PDF and write its file (not committed). The row is
    flushed before anything is rendered: the unique (image, revision) makes that flush the
    compare-and-set, so of two requests issuing one revision number the second gets the
    IntegrityError at once, and only the first writes a file."""
    c = content.confirmation
    report = StudyReport(
        image_id=content.image.id,
        revision=revision,
        status=c.status,
        label=c.label,
        labeled_by=c.labeled_by,
        labeled_at=c.labeled_at,
        prediction_id=content.prediction.id if content.prediction else None,
        model_version=content.prediction.model_version if content.prediction else None,
        created_at=utcnow(),
        content_hash="",
        size_bytes=0,
    )
    db.session.add(report)
    db.session.flush()
    data = render_pdf(render_html(content, report, pdf=True))
    report.content_hash = hashlib.sha256(data).hexdigest()
    report.size_bytes = len(data)
    target = pdf_file(report.content_hash)
    if not target.exists():
        write_atomic(target, data)
    return report


def _latest_revision(image_id: int) -> int:
    """The newest issued revision number (0 before the first)."""
    found = db.session.execute(
        db.select(db.func.max(StudyReport.revision)).filter_by(image_id=image_id)
    ).scalar_one_or_none()
    return found or 0


def _issue(content: StudyContent) -> StudyReport:
    """The revision that says what the study's state is now: the latest, or a new one. Nothing is
    committed here; the caller commits."""
    found = revisions(content.image.id)
    latest = found[0] if found else None
    if latest is not None and _matches(latest, content):
        return latest
    try:
        return _add_revision(content, (latest.revision if latest else 0) + 1)
    except IntegrityError:  # another request issued this revision number first
        db.session.rollback()
        raise ReportError(
            "The report was being issued by another request at the same time; open it again.", 409
        ) from None


def issue(image_id: int) -> tuple[StudyContent, StudyReport]:
    """Gather the study and make sure its current state has an issued, stored revision."""
    content = gather(goldset.visible_image(image_id))
    report = _issue(content)
    db.session.commit()
    return content, report


def revision_pdf(image_id: int, revision: int) -> bytes:
    goldset.visible_image(image_id)
    report = db.session.execute(
        db.select(StudyReport).filter_by(image_id=image_id, revision=revision)
    ).scalar_one_or_none()
    if report is None:
        raise ReportError(f"Study {image_id} has no report revision {revision}.", 404)
    return pdf_file(report.content_hash).read_bytes()


def pdf(image_id: int) -> bytes:
    """The current revision's PDF (issued now if the study changed since the last one)."""
    _, report = issue(image_id)
    return pdf_file(report.content_hash).read_bytes()


# --- amendment --------------------------------------------------------------------------------


def amend(image_id: int, user: User, label: str, reason: str, revision: int | None = None) -> StudyReport:
    """A doctor corrects a confirmed study's final label: the amendment, its audit event and the
    amended revision land together; earlier revisions stay as they were issued.

    Amendments of one study are serialised by the database: the amended revision must be the one
    right after `revision` (the revision the doctor read; the page's form sends it), else the
    newest when it is not given. Anything issued in between (another doctor's amendment above
    all) takes that revision number first, and this amendment gets a 409 naming it instead of
    replacing a label it never saw."""
    if not access.may_label(user):
        raise ReportError(f"Amendments come from the role {' or '.join(access.label_roles())}.", 403)
    image = goldset.visible_image(image_id)
    label, reason = (label or "").strip(), (reason or "").strip()
    classes = services().class_names
    resolved = catalog.resolve(label, classes)
    if resolved is None:
        raise ReportError(f"Unknown class {label[:60]!r}; known classes: {', '.join(classes)}.")
    label = resolved
    if not reason:
        raise ReportError("Say why the label is amended: the reason is part of the report.")
    if len(reason) > MAX_REASON:
        raise ReportError(f"Keep the reason under {MAX_REASON} characters.")
    if image.is_gold:
        raise ReportError("A gold image's label changes only through its reads and adjudication.", 409)
    # read before the label it amends: whatever lands after this read takes the next number first
    newest = _latest_revision(image.id)
    if revision is not None and revision > newest:
        raise ReportError(f"Study {image.id} has no report revision {revision}.", 409)
    if revision is not None and revision < newest:
        raise _overtaken(image.id)
    current = confirmation(image)
    if current.status == PRELIMINARY:
        raise ReportError("This study is not confirmed yet: label it in the review instead of amending.", 409)
    if label == current.label:
        raise ReportError(f"The final label is already {label}.", 409)
    amendment = LabelAmendment(
        image_id=image.id, label=label, previous_label=current.label, reason=reason, amended_by_id=user.id
    )
    db.session.add(amendment)
    db.session.flush()
    details = {"image_id": image.id, "amendment_id": amendment.id, "from": current.label, "to": label}
    audit.record(audit.Kind.REPORT_AMENDED, user, reason=reason, details=details)
    try:
        report = _add_revision(gather(image), newest + 1)
    except IntegrityError:
        db.session.rollback()
        raise _overtaken(image.id) from None
    db.session.commit()
    log.info("study %s amended to %s by %s (revision %s)", image.id, label, user.username, report.revision)
    return report


def _overtaken(image_id: int) -> ReportError:
    """The 409 of an amendment that something else got in before: it names the newest revision."""
    newest = revisions(image_id)[0]
    if newest.status == AMENDED:
        what = f"{newest.labeled_by} amended this study to {newest.label}"
    else:
        what = f"the report was issued again ({newest.status}: {newest.label or 'no label yet'})"
    return ReportError(
        f"Meanwhile {what} (revision {newest.revision}): read the report again, and amend it if it still needs it.",
        409,
    )


def to_dict(report: StudyReport) -> dict:
    return {
        "image_id": report.image_id,
        "revision": report.revision,
        "status": report.status,
        "label": report.label,
        "labeled_by": report.labeled_by,
        "labeled_at": report.labeled_at.isoformat() + "Z" if report.labeled_at else None,
        "model_version": report.model_version,
        "content_hash": report.content_hash,
        "size_bytes": report.size_bytes,
        "created_at": report.created_at.isoformat() + "Z",
    }
