"""The API's request and response schemas (marshmallow): flask-smorest validates requests with them and
writes them into the OpenAPI contract at /api/v1/openapi.json, so the contract and the behaviour are one.

Request schemas ignore fields they do not know (clients may send more than a version reads); response
schemas document the fields every answer has and allow more, so adding a field never breaks a client."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest.fields import Upload as UploadField
from marshmallow import fields, validate

from webapp.clinical.records import FIELDS as CLINICAL_FIELDS
from webapp.converters import MAX_INT
from webapp.upload.ingest import AGES, SEXES


class Request(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE


class Response(ma.Schema):
    class Meta:
        unknown = ma.INCLUDE


def whole(minimum: int = 0, maximum: int = MAX_INT, **kwargs) -> fields.Integer:
    """An integer that must be a JSON number (never true/false or a string) and fit the database."""
    in_range = validate.Range(minimum, maximum, error=f"is out of range ({minimum} to {maximum}).")
    return fields.Integer(strict=True, validate=in_range, **kwargs)


def timestamp(metadata: dict | None = None, **kwargs) -> fields.String:
    shown = {"format": "date-time", "example": "2026-12-02T08:00:00Z", **(metadata or {})}
    return fields.String(metadata=shown, **kwargs)


# --- errors -----------------------------------------------------------------------------------


class Error(Response):
    error = fields.String(required=True, metadata={"description": "What went wrong, for a person to read."})
    status = fields.Integer(required=True, metadata={"description": "The HTTP status, repeated."})
    errors = fields.Dict(metadata={"description": "Per field messages, when a request did not validate."})


# --- requests ---------------------------------------------------------------------------------


class LabelRequest(Request):
    label = fields.String(required=True, validate=validate.Length(1, 60), metadata={"example": "normal"})
    prediction_id = whole(allow_none=True, metadata={"description": "The prediction the doctor answered."})
    time_spent_ms = whole(allow_none=True, metadata={"description": "How long the review took."})


class ChatRequest(Request):
    message = fields.String(required=True, validate=validate.Length(1, 2000), metadata={"example": "Why?"})


class DecisionRequest(Request):
    reason = fields.String(required=True, validate=validate.Length(1, 2000), metadata={"example": "Better on viral"})
    override = fields.Boolean(
        load_default=False, metadata={"description": "Approve although the gate failed (recorded as such)."}
    )


class RollbackRequest(Request):
    reason = fields.String(required=True, validate=validate.Length(1, 2000))
    expected_champion = whole(
        allow_none=True,
        metadata={
            "description": "The champion you saw: refuse (409, naming the current champion) unless it is "
            "the champion now. A rollback never brings back a model a rollback withdrew.",
            "example": 2,
        },
    )


class HistoryQuery(Request):
    kind = fields.String(
        validate=validate.Length(1, 500), metadata={"description": "Only events of these kinds, comma-separated."}
    )


# --- responses --------------------------------------------------------------------------------


class Prediction(Response):
    id = fields.Integer(required=True)
    image_id = fields.Integer(required=True)
    model_version = fields.Integer(required=True, metadata={"description": "The model version that made it."})
    predicted_class = fields.String(required=True)
    confidence = fields.Float(required=True)
    probabilities = fields.Dict(keys=fields.String(), values=fields.Float(), required=True)
    location = fields.String(allow_none=True, metadata={"description": "Where the heat map is brightest."})
    created_at = timestamp(required=True)


class Label(Response):
    id = fields.Integer(required=True)
    image_id = fields.Integer(required=True)
    label = fields.String(required=True)
    user = fields.String(required=True, metadata={"description": "Who gave the label."})
    prediction_id = fields.Integer(allow_none=True)
    agreed = fields.Boolean(allow_none=True, metadata={"description": "Whether it confirmed the prediction."})
    time_spent_ms = fields.Integer(allow_none=True)
    created_at = timestamp(required=True)


class Deidentification(Response):
    """What was done to a DICOM header before anything of it was kept (PS3.15 Annex E)."""

    profile = fields.String(required=True)
    options = fields.List(fields.String(), required=True)
    method = fields.String(required=True, metadata={"description": "As written to DeidentificationMethod."})
    method_codes = fields.List(fields.String(), required=True, metadata={"description": "PS3.16 CID 7050."})
    patient_identity_removed = fields.String(required=True, metadata={"example": "YES"})
    library = fields.String(required=True)
    study_uid = fields.String(allow_none=True, metadata={"description": "The new StudyInstanceUID."})
    series_uid = fields.String(allow_none=True)
    sop_uid = fields.String(allow_none=True)
    view_position = fields.String(allow_none=True, metadata={"example": "PA"})
    actions = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    created_at = timestamp(required=True)


class ImageRecord(Response):
    id = fields.Integer(required=True)
    sha256 = fields.String(required=True)
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    format = fields.String(required=True, metadata={"example": "png"})
    site = fields.String(allow_none=True)
    patient_age = fields.Integer(allow_none=True)
    patient_sex = fields.String(allow_none=True)
    is_gold = fields.Boolean(required=True)
    created_at = timestamp(required=True)
    prediction = fields.Nested(Prediction, allow_none=True)
    deidentification = fields.Nested(Deidentification, allow_none=True, metadata={"description": "None for PNG/JPEG."})
    labels = fields.List(fields.Nested(Label), required=True)


class Uploaded(Response):
    image_id = fields.Integer(required=True)
    created = fields.Boolean(required=True, metadata={"description": "false: these bytes were stored before."})
    prediction = fields.Nested(Prediction, allow_none=True)


class Served(Response):
    image = fields.Nested(ImageRecord, allow_none=True, required=True)
    prediction = fields.Nested(Prediction, allow_none=True)
    strategy = fields.String()
    message = fields.String()


class ChatAnswer(Response):
    thread_id = fields.Integer(required=True)
    answer = fields.String(required=True)
    facts = fields.List(fields.String(), required=True, metadata={"description": "The facts the answer used."})
    intent = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    reminder = fields.String()


class Event(Response):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    what = fields.String(required=True)
    actor = fields.String(required=True, metadata={"description": "Who did it."})
    model_version = fields.Integer(allow_none=True)
    from_version = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    override = fields.Boolean(required=True)
    automatic = fields.Boolean(required=True)
    created_at = timestamp(required=True)
    details = fields.Dict()


class Events(Response):
    events = fields.List(fields.Nested(Event), required=True)


class Decision(Response):
    event = fields.Nested(Event, required=True)
    aliases = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


class GateVerdict(Response):
    passed = fields.Boolean(required=True)
    better = fields.Boolean(
        allow_none=True,
        metadata={"description": "The paired interval on the primary metric lies above zero (null: no champion)."},
    )
    decision = fields.String(allow_none=True)
    failures = fields.List(fields.String(), required=True)
    champion_version = fields.Integer(allow_none=True)
    gold_snapshot = fields.String()


class ModelVersion(Response):
    version = fields.Integer(required=True)
    aliases = fields.List(fields.String(), required=True)
    run_id = fields.String(allow_none=True)
    gate = fields.Nested(GateVerdict, allow_none=True)
    tags = fields.Dict()


class Models(Response):
    model = fields.String(required=True, metadata={"description": "The registered model name in MLflow."})
    aliases = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    versions = fields.List(fields.Nested(ModelVersion), required=True)


class GateInterval(Response):
    value = fields.Float(required=True, allow_none=True, metadata={"description": "On the gold set as it is."})
    low = fields.Float(required=True, allow_none=True, metadata={"description": "Lower bound of the interval."})
    high = fields.Float(required=True, allow_none=True, metadata={"description": "Upper bound of the interval."})


class GateMetricComparison(Response):
    candidate = fields.Nested(GateInterval, required=True)
    champion = fields.Nested(GateInterval, required=True, allow_none=True)
    difference = fields.Nested(
        GateInterval,
        required=True,
        allow_none=True,
        metadata={"description": "Candidate minus champion, on the same resampled gold images."},
    )
    mcnemar_p = fields.Float(
        required=True, allow_none=True, metadata={"description": "Exact McNemar test, for right/wrong calls."}
    )
    discordant = fields.List(
        fields.Integer(),
        required=True,
        allow_none=True,
        metadata={"description": "Gold images only the candidate got right, and only the champion."},
    )
    support = fields.Integer(required=True, metadata={"description": "Gold images the metric rests on."})
    patients = fields.Integer(required=True)


class GateSiteComparison(Response):
    n = fields.Integer(required=True)
    patients = fields.Integer(required=True)
    unit = fields.String(
        required=True,
        validate=validate.OneOf(["patient", "image"]),
        metadata={"description": "What one bootstrap draw takes: a patient's films together, or one image."},
    )
    resamples = fields.Integer(required=True)
    confidence = fields.Float(required=True)
    seed = fields.Integer(required=True)
    metrics = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(GateMetricComparison),
        required=True,
        metadata={"description": "accuracy, macro_auc, ece and <metric>_<class> for every per-class metric."},
    )


class GateComparison(GateSiteComparison):
    per_site = fields.Dict(keys=fields.String(), values=fields.Nested(GateSiteComparison), required=True)


class GateCheck(Response):
    rule = fields.String(required=True, metadata={"example": "min_sensitivity"})
    metric = fields.String(required=True)
    value = fields.Float(required=True, allow_none=True)
    threshold = fields.Float(required=True, allow_none=True)
    passed = fields.Boolean(required=True)
    message = fields.String(required=True, metadata={"description": "The rule's reading, in words."})
    status = fields.String(
        required=True, metadata={"description": "met, uncertain, below_floor, missed, learning or grace; or empty."}
    )


class GateRun(Response):
    """One gate report: candidate against champion on a frozen gold snapshot, with intervals."""

    report_id = fields.Integer(required=True)
    version = fields.Integer(required=True)
    champion_version = fields.Integer(required=True, allow_none=True)
    passed = fields.Boolean(required=True)
    verdict = fields.String(required=True, metadata={"example": "passed: better than the champion"})
    better = fields.Boolean(
        required=True,
        allow_none=True,
        metadata={"description": "The paired interval on the primary metric lies above zero (null: no champion)."},
    )
    better_reason = fields.String(required=True)
    failures = fields.List(fields.String(), required=True)
    below_floor = fields.List(fields.String(), required=True)
    uncertain = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Metrics under a floor or down beyond max_drop that the gold set cannot confirm."},
    )
    few_gold = fields.List(fields.String(), required=True)
    checks = fields.List(fields.Nested(GateCheck), required=True)
    comparison = fields.Nested(
        GateComparison,
        required=True,
        allow_none=True,
        metadata={"description": "The paired bootstrap; null for reports from before it or without gold images."},
    )
    decision = fields.String(required=True, allow_none=True)
    gold_snapshot = fields.String(required=True)
    gold_size = fields.Integer(required=True)
    created_at = timestamp(required=True)


# --- uploads ----------------------------------------------------------------------------------


class _Form(Request):
    @ma.pre_load
    def blank_is_absent(self, data, **kwargs):
        """A blank form field is a value not given, as on the upload page."""
        return {name: value for name, value in data.items() if not (isinstance(value, str) and not value.strip())}


def _clinical_field(spec, *, form: bool, allow_none: bool = False) -> fields.Field:
    """A clinical field from its one definition (webapp/clinical/records.py FIELDS: unit and range);
    form fields arrive as text, JSON numbers must be numbers."""
    rule = f"{spec.label} must be {spec.describe_rule()}."
    meta = {"description": f"{spec.label}" + (f" ({spec.unit})" if spec.unit else "")}
    if spec.kind is str:
        length = validate.Length(max=spec.max_length, error=rule)
        return fields.String(validate=length, allow_none=allow_none, metadata=meta)
    low, high = spec.range
    checks = {
        "validate": validate.Range(low, high, error=rule),
        "error_messages": {"invalid": rule},
        "allow_none": allow_none,
        "metadata": meta,
    }
    if spec.kind is int:
        return fields.Integer(strict=not form, **checks)
    return fields.Float(allow_nan=False, **checks)


Upload = _Form.from_dict(
    {
        "file": UploadField(
            required=True,
            error_messages={"required": "Send the image as multipart form field 'file'."},
            metadata={"description": "PNG, JPEG or DICOM (a CR/DX chest radiograph)."},
        ),
        "site": fields.String(validate=validate.Length(max=80), metadata={"description": "Where it was taken."}),
        "patient_age": fields.Integer(
            validate=validate.Range(*AGES, error=f"patient_age must be between {AGES[0]} and {AGES[1]}."),
            error_messages={"invalid": "patient_age must be a whole number of years."},
        ),
        "patient_sex": fields.String(
            validate=validate.OneOf(sorted(SEXES) + [s.lower() for s in sorted(SEXES)]),
            metadata={"description": "M, F or O."},
        ),
        "patient_id": fields.String(
            validate=validate.Length(max=200),
            metadata={"description": "Kept only as a keyed pseudonym, never as given."},
        ),
        **{name: _clinical_field(spec, form=True) for name, spec in CLINICAL_FIELDS.items()},
    },
    name="Upload",
)


class _Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE  # a misspelt clinical field is an error, never silently dropped


Clinical = _Strict.from_dict(
    {name: _clinical_field(spec, form=False, allow_none=True) for name, spec in CLINICAL_FIELDS.items()},
    name="Clinical",
)


class ClinicalUpdated(Response):
    image_id = fields.Integer(required=True)
    clinical = fields.Dict(allow_none=True, metadata={"description": "The study's clinical data after the change."})


# --- the routes of reports, FHIR, monitoring and the assistant --------------------------------


class ChatAsk(Request):
    message = fields.String(validate=validate.Length(1, 2000), metadata={"example": "Why?"})
    question = fields.String(validate=validate.Length(1, 2000), metadata={"description": "Another name for message."})
    mode = fields.String(
        allow_none=True, validate=validate.Length(max=20), metadata={"description": "plain: for patients."}
    )


class ReportRevision(Response):
    image_id = fields.Integer(required=True)
    revision = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"description": "preliminary | final | amended"})
    label = fields.String(allow_none=True)
    labeled_by = fields.String(allow_none=True)
    model_version = fields.Integer(allow_none=True)
    created_at = timestamp(required=True)


class StudyReports(Response):
    image_id = fields.Integer(required=True)
    status = fields.String(required=True)
    current = fields.Nested(ReportRevision, required=True)
    revisions = fields.List(fields.Nested(ReportRevision), required=True)


class Document(Response):
    """A JSON document whose fields docs/ describes (dashboard, trust meter, drift)."""


# --- monitoring and model documents (the trust meter, drift, the model dashboard) --------------


def number(**kwargs) -> fields.Float:
    """A JSON number that is null where there is nothing to measure (no reviews, no images)."""
    return fields.Float(allow_none=True, **kwargs)


# the trust meter (webapp/reports/trust.py)


class TrustAgreement(Response):
    """Reviews that answered a prediction, how many confirmed it, and the Wilson 95% interval."""

    reviews = fields.Integer(required=True, metadata={"description": "Reviews that answered a prediction."})
    agreed = fields.Integer(required=True, metadata={"description": "Of those, how many confirmed it."})
    rate = number(required=True, metadata={"description": "agreed / reviews; null without reviews."})
    low = number(required=True, metadata={"description": "Wilson 95% interval, lower bound; null without reviews."})
    high = number(required=True, metadata={"description": "Wilson 95% interval, upper bound; null without reviews."})


class TrustConfident(TrustAgreement):
    threshold = fields.Float(
        required=True, metadata={"description": "A prediction at least this confident counts (trust.confident_at)."}
    )


class TrustClass(TrustAgreement):
    """One class (overall, or at one site) and where it stands against its readiness rule."""

    class_ = fields.String(required=True, data_key="class", metadata={"description": "The doctor's label."})
    ready = fields.Boolean(
        required=True,
        metadata={"description": "Enough reviews and a lower bound at the rule's threshold (informs only)."},
    )
    why = fields.String(required=True, metadata={"description": "The readiness verdict in words."})


class TrustSite(TrustAgreement):
    site = fields.String(required=True, metadata={"description": 'The image\'s site, or "(no site)".'})
    classes = fields.List(fields.Nested(TrustClass), required=True, metadata={"description": "Classes seen there."})


class TrustReport(Response):
    window_days = fields.Integer(required=True, metadata={"description": "The rolling window (trust.window_days)."})
    since = timestamp(required=True, metadata={"description": "The window's start (UTC)."})
    version = fields.Integer(
        required=True, allow_none=True, metadata={"description": "Only this model version's predictions; null: all."}
    )
    overall = fields.Nested(TrustAgreement, required=True)
    confident = fields.Nested(
        TrustConfident, required=True, metadata={"description": "Confident predictions that doctors confirmed."}
    )
    classes = fields.List(
        fields.Nested(TrustClass), required=True, metadata={"description": "Configured classes first, then others."}
    )
    sites = fields.List(fields.Nested(TrustSite), required=True)
    versions = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "Model version -> reviews of its predictions in the window."},
    )
    note = fields.String(required=True)


# drift (webapp/reports/drift.py, learning/drift.py)


class DriftThresholds(Response):
    psi_alert = fields.Float(required=True, metadata={"description": "PSI of the intensity histogram that drifts."})
    p_value = fields.Float(required=True, metadata={"description": "Family-wise p-value per group (Holm)."})
    min_images = fields.Integer(required=True, metadata={"description": "A smaller group is not tested."})


class _DriftSummary(Response):
    """What a set of images looks like under the reference model version."""

    intensity_histogram = fields.List(
        fields.Float(), required=True, metadata={"description": "Mean intensity histogram; empty without images."}
    )
    median_width = number(required=True)
    median_height = number(required=True)
    predicted_class_shares = fields.Dict(
        keys=fields.String(),
        values=fields.Float(),
        required=True,
        metadata={"description": "Class -> share of the images the model predicted it for."},
    )
    mean_confidence = number(required=True)


class DriftReference(_DriftSummary):
    """The champion's training images the groups are compared with."""

    model_version = fields.Integer(required=True)
    images = fields.Integer(required=True, metadata={"description": "Training images measured (a sample)."})
    population = fields.Integer(required=True, metadata={"description": "Training images in all."})
    measured_at = timestamp(required=True)
    embedding_variance_explained = fields.Float(
        required=True, metadata={"description": "Share of the embeddings' variance the principal components keep."}
    )


class DriftAgreement(Response):
    agreed = fields.Integer(required=True)
    reviewed = fields.Integer(required=True, metadata={"description": "Doctors' review answers to the version."})
    rate = number(required=True, metadata={"description": "null without reviews."})


class DriftCheck(Response):
    """One comparison of a group with the reference."""

    feature = fields.String(
        required=True, metadata={"description": "intensity_histogram, mean_intensity, width, height, embedding_pcN, …"}
    )
    test = fields.String(
        required=True, validate=validate.OneOf(["psi", "ks_2samp", "chi2_contingency", "fisher_exact"])
    )
    value = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "The PSI, or the Holm-adjusted p-value; null when the test could not run (note)."},
    )
    threshold = fields.Float(required=True)
    drifting = fields.Boolean(required=True)
    statistic = fields.Float(metadata={"description": "KS D, chi-square or odds ratio, when the test has one."})
    p_value_raw = fields.Float(metadata={"description": "The p-value before correction."})
    note = fields.String(metadata={"description": "Why the test did not run, when it did not."})


class DriftGroup(_DriftSummary):
    """One group of one dimension (a site, an age band, a sex) against the reference."""

    dimension = fields.String(required=True, validate=validate.OneOf(["site", "age_band", "sex"]))
    group = fields.String(required=True, metadata={"example": "north"})
    images = fields.Integer(required=True)
    agreement = fields.Nested(DriftAgreement, required=True)
    status = fields.String(required=True, validate=validate.OneOf(["too few images", "drifting", "stable"]))
    drifting = fields.Boolean(required=True)
    drifting_features = fields.List(
        fields.String(), metadata={"description": "The drifting checks' features; absent when too few images."}
    )
    checks = fields.List(fields.Nested(DriftCheck), required=True, metadata={"description": "Empty when too few."})


class DriftReport(Response):
    model_version = fields.Integer(
        required=True, allow_none=True, metadata={"description": "The champion, the reference; null without one."}
    )
    thresholds = fields.Nested(DriftThresholds, required=True)
    correction = fields.String(required=True, metadata={"example": "holm"})
    window_days = fields.Integer(
        required=True, allow_none=True, metadata={"description": "Only images of the last N days; null: all."}
    )
    status = fields.String(required=True, validate=validate.OneOf(["measured", "not measured"]))
    reference = fields.Nested(DriftReference, required=True, allow_none=True)
    groups = fields.List(fields.Nested(DriftGroup), required=True)
    unmeasured_images = fields.Integer(
        required=True, allow_none=True, metadata={"description": "Images yet to be measured; null: not measured."}
    )


# the model dashboard (webapp/reports/dashboard.py)


class ClassMetrics(Response):
    sensitivity = number(required=True)
    specificity = number(required=True)
    precision = number(required=True)
    recall = number(required=True, metadata={"description": "The same as sensitivity."})
    f1 = number(required=True)


class OverallMetrics(Response):
    accuracy = number(required=True)
    macro_auc = number(required=True, metadata={"description": "null when a class is absent from the gold set."})
    ece = number(required=True, metadata={"description": "Top-class expected calibration error, lower is better."})


class VersionMetrics(Response):
    """One model version and its latest gold-set measurement (null metrics: never measured)."""

    version = fields.Integer(required=True)
    aliases = fields.List(fields.String(), required=True)
    role = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf(["candidate", "champion"]),
        metadata={"description": "The side of the gate report that measured it."},
    )
    gate_report = fields.Integer(required=True, allow_none=True)
    gold_snapshot = fields.String(required=True, allow_none=True, metadata={"description": "Short content hash."})
    gold_size = fields.Integer(required=True, allow_none=True)
    measured_at = timestamp(required=True, allow_none=True)
    num_labels = fields.Integer(
        required=True, allow_none=True, metadata={"description": "Doctor labels it was trained with."}
    )
    scored_snapshots = fields.List(
        fields.Integer(), required=True, metadata={"description": "Gold snapshots with per-image scores stored."}
    )
    n = fields.Integer(required=True, allow_none=True, metadata={"description": "Gold images measured."})
    overall = fields.Nested(OverallMetrics, required=True)
    per_class = fields.Dict(keys=fields.String(), values=fields.Nested(ClassMetrics), required=True)


class ModelChange(Response):
    """A completed promotion or rollback."""

    kind = fields.String(required=True, validate=validate.OneOf(["promotion", "rollback"]))
    version = fields.Integer(required=True, allow_none=True, metadata={"description": "The champion after it."})
    from_version = fields.Integer(required=True, allow_none=True)
    marked_version = fields.Integer(
        required=True, allow_none=True, metadata={"description": "Where charts mark it: promoted or rolled back."}
    )
    actor = fields.String(required=True)
    reason = fields.String(required=True, allow_none=True)
    at = timestamp(required=True)
    automatic = fields.Boolean(required=True)


class LearningCurvePoint(Response):
    version = fields.Integer(required=True)
    num_labels = fields.Integer(required=True)
    accuracy = number(required=True)
    macro_auc = number(required=True)


class ModelMetrics(Response):
    versions = fields.List(fields.Nested(VersionMetrics), required=True, metadata={"description": "Oldest first."})
    events = fields.List(fields.Nested(ModelChange), required=True)
    learning_curve = fields.List(
        fields.Nested(LearningCurvePoint),
        required=True,
        metadata={"description": "Versions trained from doctor labels that were measured."},
    )
    note = fields.String(required=True)
