"""Clinical data of a study: the fields with their units and ranges (one place), their validation,
storage and the plain lines other parts (reports, the assistant) show. The history is patient data:
it is shown to users who may see the study and never written to a log."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from webapp.errors import Problem
from webapp.extensions import db
from webapp.models import ClinicalRecord, User, utcnow


@dataclass(frozen=True)
class ClinicalField:
    label: str
    unit: str  # "" for text fields
    kind: type  # int | float | str
    range: tuple[float, float] | None = None  # inclusive, numeric fields
    max_length: int | None = None  # text fields

    def describe_rule(self) -> str:
        if self.kind is str:
            return f"text of at most {self.max_length} characters"
        low, high = self.range or (0, 0)
        number = "a whole number" if self.kind is int else "a number"
        unit = f" {self.unit}" if self.unit else ""
        return f"{number} from {_number(low)} to {_number(high)}{unit}"


FIELDS: dict[str, ClinicalField] = {
    "symptoms": ClinicalField("Symptoms", "", str, max_length=300),
    "symptom_days": ClinicalField("Symptom duration", "days", int, (0, 365)),
    "temperature_c": ClinicalField("Temperature", "°C", float, (30.0, 45.0)),
    "spo2_pct": ClinicalField("SpO2", "%", int, (50, 100)),
    "respiratory_rate": ClinicalField("Respiratory rate", "/min", int, (5, 80)),
    "wbc": ClinicalField("WBC", "10^9/L", float, (0.1, 100.0)),
    "crp_mg_l": ClinicalField("CRP", "mg/L", float, (0.0, 500.0)),
    "history": ClinicalField("History", "", str, max_length=2000),
}
NUMERIC_FIELDS = tuple(name for name, spec in FIELDS.items() if spec.kind is not str)


def _pydantic_field(spec: ClinicalField) -> tuple[Any, Any]:
    if spec.kind is str:
        return (str | None, Field(default=None, max_length=spec.max_length))
    low, high = spec.range or (None, None)
    return (spec.kind | None, Field(default=None, ge=low, le=high))


# The one validation of clinical data, for the upload form, the API and CSV imports alike.
ClinicalData: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "ClinicalData",
    __config__=ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True),
    **{name: _pydantic_field(spec) for name, spec in FIELDS.items()},
)


class ClinicalError(Problem):
    """A clinical value that cannot be stored: names the field, its unit and its range."""


def _number(value: float) -> str:
    return f"{value:g}"


def _clean(name: str, value: Any) -> Any:
    """Blank form cells are absent values; booleans are not numbers; symptoms get one spelling."""
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, bool):
        raise ClinicalError(f"{name} ({FIELDS[name].label}) must be {FIELDS[name].describe_rule()}.", field=name)
    if name == "symptoms" and isinstance(value, str):
        return ", ".join(word.strip() for word in value.split(",") if word.strip()) or None
    return value


def parse(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validated clinical values (only the fields given; None means "clear this field").
    Raises ClinicalError (400) naming the first bad field with its unit and range."""
    if not values:
        return {}
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ClinicalError(f"Unknown clinical field {unknown[0]!r}; known: {', '.join(FIELDS)}.", field=unknown[0])
    cleaned = {name: _clean(name, value) for name, value in values.items()}
    try:
        model = ClinicalData.model_validate(cleaned)
    except ValidationError as error:
        name = str(error.errors()[0]["loc"][0])
        spec = FIELDS[name]
        raise ClinicalError(f"{name} ({spec.label}) must be {spec.describe_rule()}.", field=name) from None
    return {name: getattr(model, name) for name in cleaned}


def from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """The clinical fields present (and not blank) in a form or CSV row, validated."""
    return {
        name: value for name, value in parse({n: form.get(n) for n in FIELDS if n in form}).items() if value is not None
    }


def raw_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The clinical columns of a CSV row, not yet validated (an import rejects the one bad row)."""
    return {name: row[name] for name in FIELDS if name in row and (row[name] or "").strip()}


def save(image_id: int, values: Mapping[str, Any], user: User | None) -> ClinicalRecord:
    """Create or update the record of an image with validated `values`; the caller commits."""
    record = db.session.get(ClinicalRecord, image_id)
    if record is None:
        record = ClinicalRecord(image_id=image_id, entered_by=user)
        db.session.add(record)
    else:
        record.updated_at = utcnow()
        if user is not None:
            record.entered_by = user
    for name, value in values.items():
        setattr(record, name, value)
    return record


def to_dict(record: ClinicalRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    values = {name: getattr(record, name) for name in FIELDS if getattr(record, name) is not None}
    return values or None


def for_image(image_id: int) -> dict[str, Any] | None:
    """Field -> value for the fields set on the image's clinical record; None when it has none."""
    return to_dict(db.session.get(ClinicalRecord, image_id))


def describe(record: Mapping[str, Any] | None) -> list[str]:
    """Plain lines with units, in FIELDS order: "Temperature 38.9 °C", "SpO2 91 %", "CRP 85 mg/L"."""
    lines = []
    for name, spec in FIELDS.items():
        value = (record or {}).get(name)
        if value is None or value == "":
            continue
        if name == "symptom_days":
            lines.append(f"Symptoms for {value} day{'s' if value != 1 else ''}")
        elif spec.kind is str:
            lines.append(f"{spec.label}: {value}")
        else:
            lines.append(f"{spec.label} {_number(value)} {spec.unit}")
    return lines


def update(image_id: int, values: Mapping[str, Any], user: User) -> dict[str, Any] | None:
    """A doctor adds or corrects an existing study's clinical data (None clears a field); commits.
    A missing image and a gold image awaiting its blind reads are both 404s."""
    from webapp.gold.goldset import visible_image

    image = visible_image(image_id)
    parsed = parse(values)  # a bad value is a 400 and changes nothing
    save(image.id, parsed, user)
    db.session.commit()
    return for_image(image.id)
