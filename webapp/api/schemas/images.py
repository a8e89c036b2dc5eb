"""The images routes' schemas: uploads (the form with its clinical fields), image records with their
predictions, labels and de-identification, the review queue's next image, and clinical updates."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest.fields import Upload as UploadField
from marshmallow import fields, validate

from webapp.api.schemas import Request, Response, flag, timestamp, whole
from webapp.clinical.records import FIELDS as CLINICAL_FIELDS
from webapp.priors.studies import SHOWN
from webapp.review.queue import MAX_TEXT
from webapp.upload.ingest import AGES, SEXES


def _report_text(description: str) -> fields.String:
    too_long = f"must be at most {MAX_TEXT} characters."
    return fields.String(
        allow_none=True, validate=validate.Length(max=MAX_TEXT, error=too_long), metadata={"description": description}
    )


class LabelRequest(Request):
    label = fields.String(
        validate=validate.Length(1, 60),
        metadata={"example": "normal", "description": "The class; required unless `unsure` is true."},
    )
    prediction_id = whole(allow_none=True, metadata={"description": "The prediction the doctor answered."})
    time_spent_ms = whole(allow_none=True, metadata={"description": "How long the review took."})
    unsure = flag(
        load_default=False,
        metadata={
            "description": "The doctor could not decide: `label` is the class leant to (the model's call when "
            "absent). Nothing trains on it, the report stays preliminary, and the gold page offers the study."
        },
    )
    findings = _report_text("The report's findings, as the doctor writes them.")
    impression = _report_text("The report's impression (its conclusion).")
    comment = _report_text("A note for colleagues and engineers; not in the report.")

    @ma.validates_schema
    def label_or_unsure(self, data, **kwargs):
        if not data.get("label") and not data.get("unsure"):
            raise ma.ValidationError("is required (or send unsure: true).", "label")


class Prediction(Response):
    id = fields.Integer(required=True)
    image_id = fields.Integer(required=True)
    model_version = fields.Integer(required=True, metadata={"description": "The model version that made it."})
    predicted_class = fields.String(required=True)
    confidence = fields.Float(required=True)
    probabilities = fields.Dict(keys=fields.String(), values=fields.Float(), required=True)
    uncertain_between = fields.List(
        fields.String(),
        required=True,
        allow_none=True,
        validate=validate.Length(equal=2),
        metadata={
            "description": "The two classes the model hesitates between, its likeliest first, when their "
            "probabilities are close or the top one is low (config.yaml `doubt`); null for a clear call.",
            "example": ["viral_pneumonia", "bacterial_pneumonia"],
        },
    )
    location = fields.String(allow_none=True, metadata={"description": "Where the heat map is brightest."})
    created_at = timestamp(required=True)


class Label(Response):
    id = fields.Integer(required=True)
    image_id = fields.Integer(required=True)
    label = fields.String(required=True)
    user = fields.String(required=True, metadata={"description": "Who gave the label."})
    prediction_id = fields.Integer(allow_none=True)
    agreed = fields.Boolean(
        allow_none=True, metadata={"description": "Whether it confirmed the prediction; null when unsure."}
    )
    unsure = fields.Boolean(required=True, metadata={"description": "The doctor could not decide; never trains."})
    findings = fields.String(allow_none=True)
    impression = fields.String(allow_none=True)
    comment = fields.String(allow_none=True)
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


class PriorStudy(Response):
    """Another study of the same patient (linked by the keyed pseudonym, never an identifier)."""

    id = fields.Integer(required=True, metadata={"description": "The image id of the other study."})
    date = timestamp(required=True, metadata={"description": "When it was uploaded (no study date is kept)."})
    final_label = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The doctor's label, its amendment, the gold or the imported label; null if none."},
    )
    predicted_class = fields.String(required=True, allow_none=True, metadata={"description": "The model's call."})


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
    priors = fields.List(
        fields.Nested(PriorStudy),
        required=True,
        metadata={
            "description": f"The same patient's other studies, earlier first: the {SHOWN} newest "
            "(`priors_more` counts the older ones); empty when the image has no patient link."
        },
    )
    priors_more = fields.Integer(required=True, metadata={"description": "Older studies beyond `priors`."})


class KeptField(Response):
    """A field sent with a re-upload whose value differs from the study's: the study's value stands."""

    field = fields.String(required=True, metadata={"example": "site"})
    kept = fields.Raw(
        required=True, allow_none=True, metadata={"description": "The study's value (null for patient_id)."}
    )
    typed = fields.Raw(required=True, allow_none=True, metadata={"description": "What was sent (null for patient_id)."})


class Uploaded(Response):
    image_id = fields.Integer(required=True)
    created = fields.Boolean(required=True, metadata={"description": "false: these bytes were stored before."})
    already = fields.Boolean(required=True, metadata={"description": "true: these bytes were stored before."})
    prediction = fields.Nested(Prediction, allow_none=True)
    message = fields.String(
        metadata={
            "description": "A re-upload only: what happened, for a person to read.",
            "example": "This film is already in medal as study #12. Added patient age 7. "
            "Kept site 'north' (you typed 'south').",
        }
    )
    image_url = fields.String(
        metadata={"description": "A re-upload only: the existing study.", "example": "/api/v1/images/12"}
    )
    added = fields.Dict(
        keys=fields.String(),
        metadata={
            "description": "A re-upload only: fields the study lacked, now set to the values sent (patient_id: null)."
        },
    )
    kept = fields.List(
        fields.Nested(KeptField), metadata={"description": "A re-upload only: values sent but not stored."}
    )


class Served(Response):
    image = fields.Nested(ImageRecord, allow_none=True, required=True)
    prediction = fields.Nested(Prediction, allow_none=True)
    strategy = fields.String()
    message = fields.String()
    skips = fields.Integer(metadata={"description": "How many doctors skipped the served image."})
    your_skips = fields.Integer(required=True, metadata={"description": "How many images you skipped, all told."})


class Skipped(Response):
    image_id = fields.Integer(required=True)
    skips = fields.Integer(required=True, metadata={"description": "How many doctors skipped it, you included."})
    your_skips = fields.Integer(required=True, metadata={"description": "How many images you skipped, all told."})


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
    checks: dict[str, Any] = {
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
