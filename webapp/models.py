"""The app's tables: users, images, predictions, labels, queue scores, training, gold set, audit."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from flask_login import UserMixin
from sqlalchemy import JSON, Table, UniqueConstraint, event, false, text
from sqlalchemy.orm import Mapped, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.extensions import db

if TYPE_CHECKING:
    from flask_sqlalchemy.model import Model as _FlaskModel
    from sqlalchemy.orm import AppenderQuery

    class Model(_FlaskModel):
        """What db.Model is at run time, for mypy (which takes no base class from an attribute):
        Flask-SQLAlchemy's model on SQLAlchemy's declarative base, built with column values."""

        __table__: ClassVar[Table]

        def __init__(self, **columns: Any) -> None: ...

else:
    Model = db.Model

ROLES = ("doctor", "engineer", "admin")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class User(UserMixin, Model):
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(80), unique=True, nullable=False)
    password_hash = db.Column(db.String(256), nullable=False)
    role = db.Column(db.String(20), nullable=False)
    can_adjudicate = db.Column(db.Boolean, nullable=False, default=False)
    active = db.Column(db.Boolean, nullable=False, default=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    # part of the session cookie's user id: bumping it (log-out, new password, new role) ends every session
    session_generation = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    failed_logins = db.Column(db.Integer, nullable=False, default=0, server_default="0")  # wrong passwords in a row
    locked_until = db.Column(db.DateTime)
    full_name = db.Column(db.String(120))  # as it signs a report ("Dr Ana Rossi"); the username otherwise
    job_title = db.Column(db.String(80))  # as it signs a report ("Consultant radiologist")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)
        self.end_sessions()

    def end_sessions(self) -> None:
        """Every session cookie issued so far stops working (cookies are signed, not stored: the id changes)."""
        self.session_generation = (self.session_generation or 0) + 1

    def get_id(self) -> str:  # Flask-Login stores this in the session
        return f"{self.id}:{self.session_generation or 0}"

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return bool(self.active)

    def has_role(self, *roles: str) -> bool:
        return self.role in roles or self.role == "admin"

    @property
    def adjudicates(self) -> bool:
        return self.role == "admin" or bool(self.can_adjudicate)


class ApiToken(Model):
    """Bearer tokens; only a hash is stored, the token itself is shown once."""

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False, index=True)
    token_hash = db.Column(db.String(64), unique=True, nullable=False)
    name = db.Column(db.String(80), nullable=False, default="")
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    last_used_at = db.Column(db.DateTime)  # written at most once per security.token_touch_seconds
    revoked = db.Column(db.Boolean, nullable=False, default=False)
    expires_at = db.Column(db.DateTime, nullable=False)
    user = db.relationship(User)

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


class Image(Model):
    """A stored radiograph. `pool` images await review; `train` came labeled; gold is flagged."""

    id = db.Column(db.Integer, primary_key=True)
    sha256 = db.Column(db.String(64), unique=True, nullable=False)  # of the uploaded bytes
    path = db.Column(db.String(300), nullable=False)  # normalised PNG in the store
    width = db.Column(db.Integer, nullable=False)
    height = db.Column(db.Integer, nullable=False)
    source_format = db.Column(db.String(10), nullable=False)  # png | jpeg | dicom
    origin = db.Column(db.String(20), nullable=False)  # upload | api | import | demo
    split = db.Column(db.String(10), nullable=False, default="pool")  # train | pool
    reference_label = db.Column(db.String(60))  # label that came with an import
    is_gold = db.Column(db.Boolean, nullable=False, default=False, index=True)
    site = db.Column(db.String(80))
    patient_age = db.Column(db.Integer)
    patient_sex = db.Column(db.String(1))
    patient_key = db.Column(db.String(40), index=True)  # keyed pseudonym, never the id
    uploaded_by_id = db.Column(db.Integer, db.ForeignKey("user.id"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    uploaded_by = db.relationship(User)

    if TYPE_CHECKING:  # made by the backrefs of the tables that point here
        predictions: AppenderQuery[Prediction]
        labels: AppenderQuery[Label]
        gold: GoldItem | None
        clinical: ClinicalRecord | None
        deidentification: Deidentification | None


class Prediction(Model):
    id = db.Column(db.Integer, primary_key=True)
    image_id = db.Column(db.Integer, db.ForeignKey("image.id"), nullable=False, index=True)
    model_version = db.Column(db.Integer, nullable=False, index=True)
    probabilities = db.Column(JSON, nullable=False)  # class name -> probability
    predicted_class = db.Column(db.String(60), nullable=False)
    confidence = db.Column(db.Float, nullable=False)
    latency_ms = db.Column(db.Float)
    heatmap_path = db.Column(db.String(300))  # cached Grad-CAM overlay
    location = db.Column(db.Text)  # plain-words lung zone of the activation
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    image: Mapped[Image] = relationship(Image, backref=db.backref("predictions", lazy="dynamic"))


# Labels that take an image's one review answer: all but blind gold reads and pre-0004 doubles.
REVIEW_LABEL = "channel NOT IN ('gold', 'double')"


class Label(Model):
    """A doctor's answer. One per image and doctor: a double submit cannot store two. One review
    label per image (every channel but blind gold reads): two doctors cannot both label it."""

    __table_args__ = (
        UniqueConstraint("image_id", "user_id", name="uq_label_image_user"),
        db.Index(
            "uq_label_review_image",
            "image_id",
            unique=True,
            sqlite_where=text(REVIEW_LABEL),
            postgresql_where=text(REVIEW_LABEL),
        ),
    )
    id = db.Column(db.Integer, primary_key=True)
    image_id = db.Column(db.Integer, db.ForeignKey("image.id"), nullable=False, index=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False)
    prediction_id = db.Column(db.Integer, db.ForeignKey("prediction.id"))
    label = db.Column(db.String(60), nullable=False)
    agreed = db.Column(db.Boolean)  # did it confirm the prediction it answered?
    time_spent_ms = db.Column(db.Integer)
    channel = db.Column(db.String(10), nullable=False, default="web")  # web | api
    # "unsure": the doctor could not decide; `label` is the class leant to (the model's call when none
    # was chosen). Training ignores it; the gold workflow can pick the image up.
    unsure = db.Column(db.Boolean, nullable=False, default=False, server_default=false())
    findings = db.Column(db.Text)  # the report's findings, as the doctor wrote them
    impression = db.Column(db.Text)  # the report's impression (conclusion), as the doctor wrote it
    comment = db.Column(db.Text)  # a free-text note for colleagues and engineers; not in the report
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow, index=True)
    image = db.relationship(Image, backref=db.backref("labels", lazy="dynamic"))
    user: Mapped[User] = relationship(User)
    prediction = db.relationship(Prediction)


class Claim(Model):
    """Who is served an image: held for a short while, then kept for good once the image is
    labeled (or found unshowable), so its primary key stops anyone being served it again."""

    image_id = db.Column(db.Integer, db.ForeignKey("image.id"), primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False)
    expires_at = db.Column(db.DateTime, nullable=False)
    state = db.Column(db.String(10), nullable=False, default="held", server_default="held")  # held|labeled|unshowable


class Skip(Model):
    """A doctor passed on a served image: it goes back to the queue for someone else (never to the
    same doctor again) and the skip is counted."""

    id = db.Column(db.Integer, primary_key=True)
    image_id = db.Column(db.Integer, db.ForeignKey("image.id"), nullable=False, index=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False, index=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class QueryScore(Model):
    """The active-learning score of a pool image under one model version and strategy."""

    id = db.Column(db.Integer, primary_key=True)
    image_id = db.Column(db.Integer, db.ForeignKey("image.id"), nullable=False)
    model_version = db.Column(db.Integer, nullable=False)
    strategy = db.Column(db.String(30), nullable=False)
    score = db.Column(db.Float, nullable=False)
    rank = db.Column(db.Integer, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    __table_args__ = (
        UniqueConstraint("image_id", "model_version", "strategy", name="uq_score"),
        db.Index("ix_score_lookup", "model_version", "strategy", "rank"),
    )


class Setting(Model):
    """Values an engineer changes at run time (the query strategy); config.yaml is the default."""

    key = db.Column(db.String(80), primary_key=True)
    value = db.Column(JSON, nullable=False)
    updated_by_id = db.Column(db.Integer, db.ForeignKey("user.id"))
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)


# Training runs that are still to finish: the database admits one, which covers every request.
ACTIVE_RUN = "status IN ('queued', 'running')"


class TrainingRun(Model):
    __table_args__ = (
        db.Index(
            "uq_training_run_one_active",
            text("(1)"),  # the same key for every active run: a second one is a unique violation
            unique=True,
            sqlite_where=text(ACTIVE_RUN),
            postgresql_where=text(ACTIVE_RUN),
        ),
    )
    id = db.Column(db.Integer, primary_key=True)
    status = db.Column(db.String(12), nullable=False, default="queued", index=True)
    trigger = db.Column(db.String(20), nullable=False)  # manual | labels | interval | demo | cli
    kind = db.Column(db.String(8), nullable=False, default="round", server_default="full")  # round | full
    requested_by_id = db.Column(db.Integer, db.ForeignKey("user.id"))
    parent_version = db.Column(db.Integer)
    model_version = db.Column(db.Integer)
    mlflow_run_id = db.Column(db.String(64))
    num_labels = db.Column(db.Integer)
    num_train = db.Column(db.Integer)
    progress = db.Column(JSON)
    metrics = db.Column(JSON)
    error = db.Column(db.Text)
    worker_pid = db.Column(db.Integer)
    # the lease of a running run: a pid alone is no proof of life, since pids get reused
    lease_token = db.Column(db.String(32))
    lease_expires_at = db.Column(db.DateTime)
    worker_host = db.Column(db.String(255))
    worker_started_at = db.Column(db.Float)  # the owner process's start time (psutil create_time)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    started_at = db.Column(db.DateTime)
    finished_at = db.Column(db.DateTime)
    requested_by = db.relationship(User)

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class GoldItem(Model):
    """An image marked for the gold set and the state of its adjudication."""

    image_id = db.Column(db.Integer, db.ForeignKey("image.id"), primary_key=True)
    marked_by_id = db.Column(db.Integer, db.ForeignKey("user.id"))
    status = db.Column(db.String(12), nullable=False, default="pending")  # pending | disputed | final
    final_label = db.Column(db.String(60))
    adjudicated_by_id = db.Column(db.Integer, db.ForeignKey("user.id"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    finalized_at = db.Column(db.DateTime)
    image = db.relationship(Image, backref=db.backref("gold", uselist=False))


class GoldSnapshot(Model):
    """The gold set frozen for one gate run: which images and labels, and their hash."""

    id = db.Column(db.Integer, primary_key=True)
    content_hash = db.Column(db.String(64), unique=True, nullable=False)
    items = db.Column(JSON, nullable=False)  # [[image_id, label], ...] sorted
    size = db.Column(db.Integer, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class GateReport(Model):
    id = db.Column(db.Integer, primary_key=True)
    model_version = db.Column(db.Integer, nullable=False, index=True)
    champion_version = db.Column(db.Integer)
    snapshot_id = db.Column(db.Integer, db.ForeignKey("gold_snapshot.id"), nullable=False)
    passed = db.Column(db.Boolean, nullable=False)
    result = db.Column(JSON, nullable=False)  # GateResult.to_dict()
    candidate_metrics = db.Column(JSON, nullable=False)
    champion_metrics = db.Column(JSON)
    flipped = db.Column(JSON)  # gold images whose prediction changed
    decision = db.Column(db.String(10))  # approved | rejected | None (pending)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    snapshot = db.relationship(GoldSnapshot)


class LabelClass(Model):
    """A class doctors can label with. config.yaml seeds the first ones; more are added at run time."""

    name = db.Column(db.String(60), primary_key=True)
    display = db.Column(db.String(80), nullable=False)
    position = db.Column(db.Integer, nullable=False)  # the model's output index order
    created_by_id = db.Column(db.Integer, db.ForeignKey("user.id"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class ClassAlias(Model):
    """An explicit rename: labels and predictions keep the old name; training reads the new one."""

    old_name = db.Column(db.String(60), primary_key=True)
    new_name = db.Column(db.String(60), nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class AuditEvent(Model):
    """Append-only history of gate runs, approvals, rejections, promotions and rollbacks."""

    id = db.Column(db.Integer, primary_key=True)
    kind = db.Column(db.String(20), nullable=False, index=True)
    actor_id = db.Column(db.Integer, db.ForeignKey("user.id"))
    actor_name = db.Column(db.String(80), nullable=False)  # kept even if the user goes
    model_version = db.Column(db.Integer)
    from_version = db.Column(db.Integer)
    reason = db.Column(db.Text)
    override = db.Column(db.Boolean, nullable=False, default=False)
    automatic = db.Column(db.Boolean, nullable=False, default=False)
    details = db.Column(JSON)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow, index=True)


@event.listens_for(AuditEvent, "before_update")
def _audit_is_append_only(mapper, connection, target):
    raise RuntimeError("Audit events are append-only.")


@event.listens_for(AuditEvent, "before_delete")
def _audit_is_never_deleted(mapper, connection, target):
    raise RuntimeError("Audit events are append-only.")


class ChatThread(Model):
    __table_args__ = (UniqueConstraint("prediction_id", "user_id", name="uq_thread"),)
    id = db.Column(db.Integer, primary_key=True)
    prediction_id = db.Column(db.Integer, db.ForeignKey("prediction.id"), nullable=False)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    messages: Mapped[list[ChatMessage]] = relationship("ChatMessage", order_by="ChatMessage.id", lazy="select")


class ChatMessage(Model):
    id = db.Column(db.Integer, primary_key=True)
    thread_id = db.Column(db.Integer, db.ForeignKey("chat_thread.id"), nullable=False, index=True)
    role = db.Column(db.String(10), nullable=False)  # user | assistant
    text = db.Column(db.Text, nullable=False)
    facts = db.Column(JSON)
    source = db.Column(db.String(20))  # template | language_model | refusal
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


# --- clinical data and the image + clinical data model (issue 13) ---


class ClinicalRecord(Model):
    """Clinical data of one study (symptoms, vital signs, lab values, history). Units and ranges:
    webapp/clinical/records.py FIELDS. The history is patient data: shown to users, never logged."""

    image_id = db.Column(db.Integer, db.ForeignKey("image.id"), primary_key=True)
    symptoms = db.Column(db.String(300))  # comma-separated words: "cough, fever"
    symptom_days = db.Column(db.Integer)
    temperature_c = db.Column(db.Float)
    spo2_pct = db.Column(db.Integer)
    respiratory_rate = db.Column(db.Integer)  # breaths per minute
    wbc = db.Column(db.Float)  # 10^9/L
    crp_mg_l = db.Column(db.Float)
    history = db.Column(db.Text)
    entered_by_id = db.Column(db.Integer, db.ForeignKey("user.id"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime)
    image = db.relationship(Image, backref=db.backref("clinical", uselist=False))
    entered_by = db.relationship(User)


class ClinicalModel(Model):
    """A fitted image + clinical data model: its MLflow version, its gate result on the gold images
    that carry clinical data, and the engineer's decision. Only an approved one is shown."""

    id = db.Column(db.Integer, primary_key=True)
    model_version = db.Column(db.Integer, nullable=False)  # version of "<model.name>-clinical"
    image_model_version = db.Column(db.Integer, nullable=False, index=True)  # whose probabilities it reads
    mlflow_run_id = db.Column(db.String(64))
    num_train = db.Column(db.Integer, nullable=False)
    num_gold = db.Column(db.Integer, nullable=False)
    metrics = db.Column(JSON, nullable=False)  # EvaluationReport.to_dict() of image + clinical data
    image_metrics = db.Column(JSON, nullable=False)  # image-only on the same gold images
    result = db.Column(JSON, nullable=False)  # GateResult.to_dict()
    passed = db.Column(db.Boolean, nullable=False)
    decision = db.Column(db.String(10))  # approved | rejected | None (pending)
    decided_by_id = db.Column(db.Integer, db.ForeignKey("user.id"))
    decided_at = db.Column(db.DateTime)
    reason = db.Column(db.Text)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    decided_by = db.relationship(User)


# --- study reports (issue 13) ---


class StudyReport(Model):
    """One issued revision of a study's report, kept for good: a correction issues a new revision
    ("amended") and the earlier ones stay readable. The PDF lies in MEDAL_HOME/reports, named by its hash."""

    __table_args__ = (UniqueConstraint("image_id", "revision", name="uq_study_report_revision"),)
    id = db.Column(db.Integer, primary_key=True)
    image_id = db.Column(db.Integer, db.ForeignKey("image.id"), nullable=False, index=True)
    revision = db.Column(db.Integer, nullable=False)
    status = db.Column(db.String(12), nullable=False)  # preliminary | final | amended
    label = db.Column(db.String(60))  # the doctor's final label; None while preliminary
    labeled_by = db.Column(db.String(170))  # usernames, kept even if the users go
    labeled_at = db.Column(db.DateTime)
    prediction_id = db.Column(db.Integer, db.ForeignKey("prediction.id"))
    model_version = db.Column(db.Integer)
    content_hash = db.Column(db.String(64), nullable=False)  # sha256 of the PDF
    size_bytes = db.Column(db.Integer, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class LabelAmendment(Model):
    """A doctor's correction of a confirmed study's final label, with the reason. The review label
    stays as it was answered (agreement with the model is about that answer); training reads the
    newest amendment instead (webapp/labelstore.py)."""

    id = db.Column(db.Integer, primary_key=True)
    image_id = db.Column(db.Integer, db.ForeignKey("image.id"), nullable=False, index=True)
    label = db.Column(db.String(60), nullable=False)
    previous_label = db.Column(db.String(60), nullable=False)
    reason = db.Column(db.Text, nullable=False)
    amended_by_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    amended_by: Mapped[User] = relationship(User)


# --- model dashboard (issue 13) ---


class GoldScore(Model):
    """One model version's probabilities for one image of a frozen gold snapshot, stored when the gate
    scores it: what the dashboard's ROC curves and reliability diagrams are drawn from."""

    __table_args__ = (UniqueConstraint("model_version", "snapshot_id", "image_id"),)
    id = db.Column(db.Integer, primary_key=True)
    model_version = db.Column(db.Integer, nullable=False, index=True)
    snapshot_id = db.Column(db.Integer, db.ForeignKey("gold_snapshot.id"), nullable=False)
    image_id = db.Column(db.Integer, db.ForeignKey("image.id"), nullable=False)
    true_label = db.Column(db.String(60), nullable=False)
    probabilities = db.Column(JSON, nullable=False)  # {class name: probability}, the classes at gate time
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


# --- trust meter, labelling activity, operations metrics (issue 13) ---


# --- drift (issue 13) ---


class DriftReference(Model):
    """A champion's training data as drift checks see it, measured once per model version: the PCA
    its images' features define, and how many were measured (their rows: ImageDriftStats, reference)."""

    model_version = db.Column(db.Integer, primary_key=True, autoincrement=False)
    images = db.Column(db.Integer, nullable=False)  # reference images measured (a seeded sample)
    population = db.Column(db.Integer, nullable=False)  # images in the training data it was drawn from
    projection = db.Column(JSON, nullable=False)  # learning.drift.Projection.to_dict()
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class ImageDriftStats(Model):
    """One image's input and prediction statistics under one model version, computed once by the
    worker (the drift page never decodes images): histogram, size, projected features, prediction."""

    __table_args__ = (UniqueConstraint("image_id", "model_version", name="uq_drift_stats"),)
    id = db.Column(db.Integer, primary_key=True)
    image_id = db.Column(db.Integer, db.ForeignKey("image.id"), nullable=False, index=True)
    model_version = db.Column(db.Integer, nullable=False, index=True)
    reference = db.Column(db.Boolean, nullable=False, default=False)  # one of the version's training images
    histogram = db.Column(JSON, nullable=False)  # shares of the stored grayscale pixels, drift.histogram_bins
    width = db.Column(db.Integer, nullable=False)
    height = db.Column(db.Integer, nullable=False)
    projection = db.Column(JSON, nullable=False)  # the features in the reference's principal components
    predicted_class = db.Column(db.String(60), nullable=False)
    confidence = db.Column(db.Float, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


# --- assistant (issue 13) ---


# --- DICOM de-identification (issue 14) ---


class Deidentification(Model):
    """What was done to a DICOM image's header before anything of it was kept (PS3.15 Annex E):
    the profile and options, the library, the new (keyed, consistent) UIDs, and the view position.
    Nothing of the original header is stored here or anywhere else."""

    image_id = db.Column(db.Integer, db.ForeignKey("image.id"), primary_key=True)
    profile = db.Column(db.String(120), nullable=False)
    options = db.Column(JSON, nullable=False)  # list of "option: yes/no (...)" lines
    method = db.Column(db.String(200), nullable=False)  # as written to DeidentificationMethod
    method_codes = db.Column(JSON, nullable=False)  # CID 7050 codes: 113100, 113108
    patient_identity_removed = db.Column(db.String(3), nullable=False, default="YES")
    library = db.Column(db.String(120), nullable=False)
    study_uid = db.Column(db.String(64), index=True)  # the new StudyInstanceUID, never the original
    series_uid = db.Column(db.String(64))
    sop_uid = db.Column(db.String(64))
    view_position = db.Column(db.String(16))  # PA, AP, LL ...
    actions = db.Column(JSON, nullable=False)  # counts: removed, emptied, uids_replaced, private_removed
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    image = db.relationship(Image, backref=db.backref("deidentification", uselist=False))


# --- PACS (issue 14) ---


class PacsStudy(Model):
    """A study pulled from the PACS, known only by a keyed hash of its original StudyInstanceUID
    (never the UID itself): a study is pulled once; a partly failed one is retried next pull."""

    id = db.Column(db.Integer, primary_key=True)
    study_key = db.Column(db.String(64), unique=True, nullable=False)  # HMAC of the original UID
    status = db.Column(db.String(10), nullable=False)  # pulled | partial (retried)
    instances = db.Column(db.Integer, nullable=False, default=0)  # in the study at the last pull
    stored = db.Column(db.Integer, nullable=False, default=0)  # new images in the pool
    existing = db.Column(db.Integer, nullable=False, default=0)  # the same bytes were already stored
    refused = db.Column(db.Integer, nullable=False, default=0)  # refused by ingest (modality, body part ...)
    failed = db.Column(db.Integer, nullable=False, default=0)  # could not be retrieved: retried
    first_pulled_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    pulled_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class PacsImage(Model):
    """Which pulled study an image came from: a push finds the study again by its key."""

    image_id = db.Column(db.Integer, db.ForeignKey("image.id"), primary_key=True)
    study_id = db.Column(db.Integer, db.ForeignKey("pacs_study.id"), nullable=False, index=True)
    study = db.relationship(PacsStudy)
