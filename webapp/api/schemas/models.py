"""The model routes' schemas: versions and their gate verdicts, gate reports with their paired intervals,
decisions, rollback, the history of events and the model dashboard's metrics."""

from __future__ import annotations

from marshmallow import fields, validate

from webapp.api.schemas import Request, Response, number, timestamp, whole


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
        required=True,
        metadata={"description": "met, uncertain, below_floor, missed, learning, grace, traded or handed; or empty."},
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


# the model dashboard


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
