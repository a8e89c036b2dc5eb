"""The image + clinical data model: its worker job (fit, validate on gold, register, gate), the
engineer's decision, and the approved model's prediction shown beside the image-only one."""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flask import current_app

from learning import fusion
from learning.metrics import evaluate, flat_metrics
from registry.client import Registry, RunRecord
from registry.gate import Check, GateResult, check
from registry.uris import MODEL_ARTIFACT
from webapp import audit
from webapp.clinical.records import NUMERIC_FIELDS
from webapp.errors import Problem
from webapp.extensions import db
from webapp.models import ClinicalModel, ClinicalRecord, GoldItem, Image, Label, Prediction, User, utcnow
from webapp.services import services

log = logging.getLogger(__name__)
SHOWN_AS = "image + clinical data"
_loaded: dict[tuple[str, int], fusion.FusionModel] = {}  # (registered name, version) -> model; versions never change
_lock = threading.Lock()


def registry() -> Registry:
    """The clinical model's own registered model, "<model.name>-clinical", in the same MLflow store."""
    name = f"{services().settings.model.name}-clinical"
    config = current_app.config
    return Registry(
        config["MLFLOW_TRACKING_URI"], name, config["MLFLOW_ARTIFACT_ROOT"], Path(config["MODEL_CACHE"]) / "clinical"
    )


@dataclass(frozen=True)
class Study:
    image_id: int
    probabilities: dict[str, float]
    clinical: dict[str, float | None]
    label: str


def _clinical_values(record: ClinicalRecord) -> dict[str, float | None]:
    return {name: getattr(record, name) for name in NUMERIC_FIELDS}


def _has_numbers(record: ClinicalRecord) -> bool:
    return any(getattr(record, name) is not None for name in NUMERIC_FIELDS)


def training_studies(champion: int) -> list[Study]:
    """Reviewed non-gold studies with clinical data and a doctor's label, with the champion's latest prediction."""
    # one query, not one per study (the clinical models page counts these on every view); the
    # champion's newest prediction per image grouped once, not looked up per label
    newest = (
        db.select(Prediction.image_id, db.func.max(Prediction.id).label("id"))
        .where(Prediction.model_version == champion)
        .group_by(Prediction.image_id)
        .subquery()
    )
    rows = db.session.execute(
        db.select(Label.image_id, Label.label, ClinicalRecord, Prediction.probabilities)
        .join(ClinicalRecord, ClinicalRecord.image_id == Label.image_id)
        .join(Image, Image.id == Label.image_id)
        .join(newest, newest.c.image_id == Label.image_id)
        .join(Prediction, Prediction.id == newest.c.id)
        .where(Label.channel.notin_(("gold", "double")), Image.is_gold.is_(False))  # the review answer
        .where(Label.unsure.is_(False))  # a doctor who could not decide teaches nothing
        .order_by(Label.image_id)
    ).all()
    return [
        Study(image_id, probabilities, _clinical_values(record), label)
        for image_id, label, record, probabilities in rows
        if _has_numbers(record)
    ]


def with_known_labels(studies: list[Study]) -> list[Study]:
    """The studies whose doctor's label is one of the champion's classes: those a fit learns from."""
    classes = set(studies[0].probabilities) if studies else set()
    return [study for study in studies if study.label in classes]


def gold_studies(champion: int) -> list[Study]:
    """Adjudicated gold images with clinical data; the champion predicts those it has not yet."""
    rows = db.session.execute(
        db.select(GoldItem, ClinicalRecord)
        .join(ClinicalRecord, ClinicalRecord.image_id == GoldItem.image_id)
        .where(GoldItem.status == "final")
        .order_by(GoldItem.image_id)
    ).all()
    studies = []
    for item, record in rows:
        prediction = _prediction_of(item.image_id, champion, make=True)
        if prediction is not None and _has_numbers(record):
            studies.append(Study(item.image_id, prediction.probabilities, _clinical_values(record), item.final_label))
    return studies


def _prediction_of(image_id: int, version: int, make: bool = False) -> Prediction | None:
    from webapp.inference import predictions

    found = predictions.latest(image_id, version)
    if found is None and make and services().server.current().version == version:
        found = predictions.predict(db.session.get_one(Image, image_id))
    return found


def _inputs(studies: list[Study], classes: list[str]) -> tuple[fusion.FusionInputs, np.ndarray]:
    inputs = fusion.FusionInputs.from_rows(
        [s.probabilities for s in studies], [s.clinical for s in studies], classes, NUMERIC_FIELDS
    )
    return inputs, np.array([classes.index(s.label) for s in studies], dtype=int)


def fit_if_due() -> dict:
    """The worker's job: fit, validate and register a candidate once `clinical.min_studies` reviewed
    studies carry clinical data; nothing at all (no MLflow call) while no study has any."""
    if db.session.execute(db.select(ClinicalRecord.image_id).limit(1)).first() is None:
        return {"clinical": "no clinical data"}
    champion = services().registry.version_for("champion")
    if champion is None:
        return {"clinical": "no champion"}
    settings = services().settings
    studies = training_studies(champion)
    if not studies:
        return {"clinical": "no reviewed studies with clinical data", "studies": 0}
    classes = list(studies[0].probabilities)
    studies = with_known_labels(studies)
    if len(studies) < settings.clinical.min_studies:
        return {"clinical": "waiting", "studies": len(studies), "needed": settings.clinical.min_studies}
    done = db.session.execute(
        db.select(ClinicalModel).filter_by(image_model_version=champion, num_train=len(studies)).limit(1)
    ).scalar_one_or_none()
    if done is not None:
        return {"clinical": "up to date", "model": done.id}
    if len({s.label for s in studies}) < 2:
        return {"clinical": "one class only", "studies": len(studies)}
    return {"clinical": "fitted", "model": fit(champion, classes, studies).id}


def fit(champion: int, classes: list[str], studies: list[Study]) -> ClinicalModel:
    settings = services().settings
    inputs, y = _inputs(studies, classes)
    model = fusion.fit(inputs, y, classes, NUMERIC_FIELDS, seed=settings.training.seed)
    gold = [s for s in gold_studies(champion) if s.label in classes]
    gold_inputs, gold_y = _inputs(gold, classes)
    fused = evaluate(gold_y, model.predict_proba(gold_inputs), classes).to_dict() if gold else _empty(classes)
    image_only = evaluate(gold_y, gold_inputs.image_probabilities, classes).to_dict() if gold else _empty(classes)
    result = gate(fused, image_only, len(gold))
    version, run_id = _register(model, champion, studies, fused, image_only, result)
    row = ClinicalModel(
        model_version=version,
        image_model_version=champion,
        mlflow_run_id=run_id,
        num_train=len(studies),
        num_gold=len(gold),
        metrics=fused,
        image_metrics=image_only,
        result=result.to_dict(),
        passed=result.passed,
    )
    db.session.add(row)
    audit.record(
        audit.Kind.FUSION_CANDIDATE,
        None,
        automatic=True,
        model_version=version,
        details={"image_model_version": champion, "passed": result.passed, "train": len(studies), "gold": len(gold)},
    )
    db.session.commit()
    log.info("image + clinical data model v%s fitted on %d studies, gate %s", version, len(studies), result.verdict)
    return row


def _empty(classes: list[str]) -> dict:
    return evaluate(np.zeros(0, dtype=int), np.zeros((0, len(classes))), classes).to_dict()


def gate(fused: dict, image_only: dict, gold_size: int) -> GateResult:
    """The image model's gate (floors, allowed drops) with image-only on the same gold images as the
    champion, and one more rule: never less accurate than image-only."""
    result = check(fused, image_only, services().settings.gate.policy, gold_size)
    worse = fused["accuracy"] < image_only["accuracy"]
    extra = Check(
        "not_worse",
        "accuracy",
        fused["accuracy"],
        image_only["accuracy"],
        not worse,
        f"accuracy {fused['accuracy']:.3f} against image-only {image_only['accuracy']:.3f} on the same gold images",
    )
    return GateResult(result.passed and not worse, [*result.checks, extra])


def _register(
    model: fusion.FusionModel, champion: int, studies: list[Study], fused: dict, image_only: dict, result: GateResult
) -> tuple[int, str]:
    clinical_registry = registry()
    record = RunRecord(
        params={"image_model_version": champion, "fields": ",".join(model.fields), "steps": model.spec()["steps"]},
        final_metrics={
            **{f"gold_{k}": v for k, v in flat_metrics(fused).items()},
            **{f"image_only_{k}": v for k, v in flat_metrics(image_only).items()},
            "num_train": len(studies),
        },
        tags={"kind": "image+clinical", "image_model_version": champion, "gate": result.verdict},
    )
    run = clinical_registry.client.create_run(clinical_registry.experiment_id(), run_name=f"clinical-on-v{champion}")
    run_id = run.info.run_id
    try:
        for key, value in record.params.items():
            clinical_registry.client.log_param(run_id, key, str(value))
        for key, value in record.final_metrics.items():
            clinical_registry.client.log_metric(run_id, key, float(value))
        for key, value in record.tags.items():
            clinical_registry.client.set_tag(run_id, key, str(value))
        with tempfile.TemporaryDirectory() as tmp:
            clinical_registry.client.log_artifacts(
                run_id, str(fusion.save(model, Path(tmp) / MODEL_ARTIFACT)), MODEL_ARTIFACT
            )
        clinical_registry.client.set_terminated(run_id, "FINISHED")
    except Exception:
        clinical_registry.client.set_terminated(run_id, "FAILED")
        raise
    version = clinical_registry.register(run_id, tags={"image_model_version": champion, "gate": result.verdict})
    return version, run_id


def decide(model_id: int, user: User, approve: bool, reason: str) -> ClinicalModel:
    """An engineer approves or rejects a candidate, with a reason; only a passed one can be approved."""
    row = db.session.get(ClinicalModel, model_id)
    if row is None:
        raise Problem(f"No image + clinical data model {model_id}.", 404)
    reason = (reason or "").strip()
    if not reason or len(reason) > 2000:
        raise Problem("Give a reason (at most 2000 characters).")
    if row.decision is not None:
        raise Problem(f"This model was already {row.decision}.", 409)
    if approve and not row.passed:
        raise Problem("This model failed its gate and cannot be approved.", 409)
    row.decision = "approved" if approve else "rejected"
    row.decided_by, row.decided_at, row.reason = user, utcnow(), reason
    audit.record(
        audit.Kind.FUSION_APPROVED if approve else audit.Kind.FUSION_REJECTED,
        user,
        reason=reason,
        model_version=row.model_version,
        details={"image_model_version": row.image_model_version},
    )
    db.session.commit()
    return row


def approved_for(image_model_version: int) -> ClinicalModel | None:
    """The latest approved model fitted on this image model's probabilities (another version's differ)."""
    return db.session.execute(
        db.select(ClinicalModel)
        .filter_by(decision="approved", image_model_version=image_model_version)
        .order_by(ClinicalModel.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _load(version: int) -> fusion.FusionModel:
    clinical_registry = registry()
    key = (clinical_registry.model_name, version)
    with _lock:
        if key not in _loaded:
            _loaded[key] = fusion.load(clinical_registry.model_dir(version))
        return _loaded[key]


def prediction_for(prediction: Prediction | None) -> dict | None:
    """The approved image + clinical data prediction for this image-only prediction, or None (no
    approved model for its version, or a study without clinical values)."""
    if prediction is None:
        return None
    record = db.session.get(ClinicalRecord, prediction.image_id)
    if record is None or not _has_numbers(record):
        return None
    row = approved_for(prediction.model_version)
    if row is None:
        return None
    model = _load(row.model_version)
    inputs = fusion.FusionInputs.from_rows(
        [prediction.probabilities], [_clinical_values(record)], model.class_names, model.fields
    )
    probabilities = {name: float(p) for name, p in zip(model.class_names, model.predict_proba(inputs)[0])}
    top = max(probabilities, key=probabilities.__getitem__)
    return {
        "kind": SHOWN_AS,
        "model_version": row.model_version,
        "image_model_version": row.image_model_version,
        "probabilities": probabilities,
        "predicted_class": top,
        "confidence": probabilities[top],
    }


def job() -> dict:
    """APScheduler entry point (webapp.clinical.fusion:job)."""
    from webapp.training import jobs

    with jobs.app_context():
        return fit_if_due()
