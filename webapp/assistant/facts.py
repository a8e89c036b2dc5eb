"""The assistant's facts about a prediction, read from the platform: one builder for the chat and the study report."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from assistant.facts import Facts
from learning.metrics import PER_CLASS_METRICS, metric_key
from webapp.assistant import model_facts
from webapp.classes import catalog
from webapp.clinical import records
from webapp.extensions import db
from webapp.inference import doubt
from webapp.models import GoldItem, Label, Prediction, User
from webapp.services import services


@dataclass(frozen=True)
class GoldMeasures:
    """A model version's gold-set figures as the assistant states them; empty when none were measured."""

    size: int | None = None
    predicted: dict[str, float] = field(default_factory=dict)  # for the predicted class
    by_class: dict[str, dict[str, float]] = field(default_factory=dict)  # every class measured


def facts_for(
    prediction: Prediction, *, labels: list[str], gold: GoldMeasures, clinical: list[str] | None = None
) -> Facts:
    """The prediction's facts with what its reader may know beside them: the labels they may see,
    the version's gold-set figures and the study's clinical lines."""
    return Facts(
        prediction_id=prediction.id,
        model_version=prediction.model_version,
        probabilities=dict(prediction.probabilities),
        location=prediction.location,
        gold_metrics=dict(gold.predicted),
        gold_size=gold.size,
        doctor_labels=labels,
        gold_by_class=dict(gold.by_class),
        clinical=list(clinical or []),
        display_names={name: catalog.display(name) for name in prediction.probabilities},
        uncertain_between=doubt.read(prediction.probabilities, services().settings.doubt).between,
    )


def chat_facts(prediction: Prediction, user: User) -> Facts:
    """What this user may know about the prediction, gathered as the pages gather it, with what the
    chat alone states about the model: its gold-set errors, its training data and other classes' evidence."""
    facts = facts_for(
        prediction,
        labels=labels_visible_to(prediction, user),
        gold=registry_gold(prediction),
        clinical=clinical_lines(prediction.image_id),
    )
    errors, measured_on = model_facts.gold_errors(prediction.model_version)
    return dataclasses.replace(
        facts,
        gold_errors=errors,
        gold_errors_size=measured_on,
        training_use=model_facts.training_use(prediction.image, prediction.model_version),
        evidence_for=model_facts.evidence_for(prediction),
    )


def registry_gold(prediction: Prediction) -> GoldMeasures:
    """The gold-set metrics the registry holds for the prediction's model version: the predicted
    class's (with the macro AUC) and every class's, so "how accurate are you on X?" answers for X."""
    metrics = services().registry.version_metrics(prediction.model_version, prefix="gold_")
    if not metrics.get("n"):
        return GoldMeasures()
    top = prediction.predicted_class
    predicted = {key: metrics[metric_key(key, top)] for key in PER_CLASS_METRICS if metric_key(key, top) in metrics}
    if "macro_auc" in metrics:
        predicted["macro AUC"] = metrics["macro_auc"]
    by_class = {
        name: {key: metrics[metric_key(key, name)] for key in PER_CLASS_METRICS if metric_key(key, name) in metrics}
        for name in prediction.probabilities
    }
    return GoldMeasures(int(metrics["n"]), predicted, {name: values for name, values in by_class.items() if values})


def clinical_lines(image_id: int) -> list[str]:
    """The study's clinical fields as lines with units ("CRP 85 mg/L")."""
    record = records.for_image(image_id)
    # the free-text history stays on the study page: chat answers are stored, and it may name people
    return [line for line in records.describe(record) if not line.startswith("History:")] if record else []


def labels_visible_to(prediction: Prediction, user: User) -> list[str]:
    labels = (
        db.session.execute(db.select(Label).filter_by(image_id=prediction.image_id).order_by(Label.id)).scalars().all()
    )
    gold = db.session.get(GoldItem, prediction.image_id)
    lines = []
    for label in labels:
        if label.user_id == user.id:
            # an unsure answer is a lean, not a diagnosis: the assistant must not present it as one
            named = catalog.display(label.label)
            lines.append(f"Your label: unsure, leaning {named}." if label.unsure else f"Your label: {named}.")
        elif gold is None or gold.status == "final":
            # gold reads stay independent until the item is settled
            lines.append(f"A {label.user.role} labeled it {catalog.display(label.label)}.")
    if gold is not None and gold.status == "final" and gold.final_label:
        lines.append(f"Adjudicated gold label: {catalog.display(gold.final_label)}.")
    return lines
