"""The monitoring documents' schemas: the trust meter and drift."""

from __future__ import annotations

from marshmallow import fields, validate

from webapp.api.schemas import Response, number, timestamp

# the trust meter


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


# drift (learning/drift.py measures it)


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
