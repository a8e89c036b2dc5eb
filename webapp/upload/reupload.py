"""A re-upload of bytes already stored: the fields typed with it fill the study's gaps and never
overwrite what it holds; what was added and what was kept is said back to the person uploading."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from webapp.clinical import records as clinical_records
from webapp.models import Image, User
from webapp.services import services

if TYPE_CHECKING:
    from webapp.upload.ingest import ImageMeta

# the image's own columns a re-upload may fill, as a person reads them
PATIENT_FIELDS = {"site": "site", "patient_age": "patient age", "patient_sex": "patient sex"}
# values never repeated back in words: an identifier (only its pseudonym is stored) and free text
UNQUOTED = {"patient_id", "history"}


@dataclass(frozen=True)
class Kept:
    """A typed value that differs from the study's: the study's value stands."""

    field: str  # "site", "patient_age", "patient_id", a clinical field ...
    kept: Any  # None for the patient id: neither it nor its pseudonym is shown
    typed: Any

    def words(self) -> str:
        name = _name(self.field)
        if self.field in UNQUOTED:
            return f"{name} (you typed a different one)"
        return f"{name} {_value(self.field, self.kept)} (you typed {_value(self.field, self.typed)})"

    def to_dict(self) -> dict:
        hidden = self.field == "patient_id"
        return {"field": self.field, "kept": None if hidden else self.kept, "typed": None if hidden else self.typed}


@dataclass(frozen=True)
class Completion:
    """What a re-upload did to the study it found: the fields added, the values kept."""

    image_id: int
    added: dict[str, Any] = field(default_factory=dict)
    kept: list[Kept] = field(default_factory=list)

    def message(self) -> str:
        """What a person reads, e.g. "This film is already in medal as study #12. Added patient age 7.
        Kept site 'north' (you typed 'south')." """
        return " ".join([f"This film is already in medal as study #{self.image_id}.", *self.details()])

    def details(self) -> list[str]:
        """The sentences after the first: "Added ...", "Kept ..."."""
        sentences = []
        if self.added:
            added = [_name(n) if n in UNQUOTED else f"{_name(n)} {_value(n, v)}" for n, v in self.added.items()]
            sentences.append("Added " + ", ".join(added) + ".")
        if self.kept:
            sentences.append("Kept " + ", ".join(kept.words() for kept in self.kept) + ".")
        return sentences

    def to_dict(self) -> dict:
        """For the JSON answers; the patient id typed is never repeated, not even as its pseudonym."""
        return {"message": self.message(), "added": self.added, "kept": [kept.to_dict() for kept in self.kept]}


def complete(image: Image, meta: ImageMeta, clinical: dict[str, Any], user: User | None) -> Completion:
    """Fill the study's empty fields from the re-upload's typed ones (the caller commits). A site is
    empty when it is images.default_site, the site given to images uploaded without one."""
    added: dict[str, Any] = {}
    kept: list[Kept] = []
    default_site = services().settings.images.default_site
    for name in PATIENT_FIELDS:
        typed, stored = getattr(meta, name), getattr(image, name)
        if typed is None or typed == stored:
            continue
        if stored is None or (name == "site" and stored == default_site):
            setattr(image, name, typed)
            added[name] = typed
        else:
            kept.append(Kept(name, stored, typed))
    if meta.patient_key is not None and meta.patient_key != image.patient_key:
        if image.patient_key is None:  # links the study to the patient's others (priors)
            image.patient_key = meta.patient_key
            added["patient_id"] = None  # said as "the patient id", never repeated
        else:
            kept.append(Kept("patient_id", None, None))
    stored_clinical = clinical_records.for_image(image.id) or {}
    new_clinical = {}
    for name, typed in clinical.items():
        stored = stored_clinical.get(name)
        if stored is None:
            new_clinical[name] = added[name] = typed
        elif stored != typed:
            kept.append(Kept(name, stored, typed))
    if new_clinical:
        clinical_records.save(image.id, new_clinical, user)
    return Completion(image.id, added, kept)


def _name(field_name: str) -> str:
    if field_name == "patient_id":
        return "the patient id"
    if field_name in clinical_records.FIELDS:
        label = clinical_records.FIELDS[field_name].label
        return label[0].lower() + label[1:] if label[1:].islower() else label  # "temperature", "CRP", "SpO2"
    return PATIENT_FIELDS[field_name]


def _value(field_name: str, value: Any) -> str:
    spec = clinical_records.FIELDS.get(field_name)
    if spec is not None and spec.kind is not str:
        return f"{value:g} {spec.unit}".strip()
    if isinstance(value, str) and field_name != "patient_sex":
        return f"'{value}'"
    return str(value)
