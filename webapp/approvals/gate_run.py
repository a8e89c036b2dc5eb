"""Running the gate: candidate and champion on one frozen gold snapshot, the verdict stored and
the metrics logged to MLflow."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from sqlalchemy import func

from learning.intervals import Comparison, paired_bootstrap
from learning.metrics import confusion_matrix_figure, evaluate, flat_metrics
from learning.model import XrayNet
from learning.predict import align_probabilities, score_pool
from registry.gate import GatePolicy, check
from registry.uris import CHAMPION
from webapp import audit, labelstore
from webapp.classes import catalog
from webapp.extensions import db
from webapp.gold.snapshots import freeze_gold
from webapp.models import GateReport, GoldScore, GoldSnapshot, Image, Label, TrainingRun
from webapp.services import services
from webapp.training import recipe

log = logging.getLogger(__name__)
RECENT_LABELS = 200  # labels that define "recent model-doctor agreement"


@dataclass(frozen=True)
class Evaluation:
    report: dict  # EvaluationReport.to_dict()
    predicted: dict[int, str]  # image id -> predicted class
    model_classes: list[str]  # the classes the version's head outputs
    probabilities: np.ndarray | None = None  # per gold example, aligned to the current class names


def evaluate_version(version: int, examples: list[labelstore.Example]) -> Evaluation:
    names = services().class_names
    net = services().server.net_for(version) or services().registry.load(version)
    if not examples:
        return Evaluation(evaluate(np.zeros(0), np.zeros((0, len(names))), names).to_dict(), {}, net.spec.class_names)
    # a model from before a class was added never predicts it: probability 0 for that class
    probabilities = align_probabilities(
        _gold_probabilities(net, [example.path for example in examples]),
        net.spec.class_names,
        names,
        catalog.aliases(),
    )
    truth = np.array([names.index(example.label) for example in examples])
    predicted = {example.image_id: names[int(i)] for example, i in zip(examples, probabilities.argmax(axis=1))}
    report = evaluate(truth, probabilities, names).to_dict()
    report["per_site"] = _per_site(examples, truth, probabilities, names)
    return Evaluation(report, predicted, net.spec.class_names, probabilities)


def _gold_probabilities(net: XrayNet, paths: list[str]) -> np.ndarray:
    """The version's probabilities on the gold films. Where it can be cut where rounds cut it, from
    the trunk activations rounds keep: a round's candidate shares its champion's trunk, so the gold
    films' lower blocks run once per trunk and every later gate runs only the upper blocks and the
    head for both models (docs/benchmarks.md, "The gate on stored activations")."""
    stored = recipe.stored_scores(net, paths, services().settings)
    return (stored if stored is not None else score_pool(net, paths)).probabilities


def _per_site(
    examples: list[labelstore.Example], truth: np.ndarray, probabilities: np.ndarray, names: list[str]
) -> dict[str, dict]:
    """The same metrics for each site with at least `gate.min_site_gold` gold images (only when the
    gold set spans two sites or more: with one, the site's numbers are the overall ones)."""
    least = max(services().settings.gate.min_site_gold, 1)
    sites = np.array([example.site or "unknown" for example in examples])
    found = {}
    for site in sorted(set(sites)):
        rows = sites == site
        if rows.sum() >= least:
            found[str(site)] = evaluate(truth[rows], probabilities[rows], names).to_dict()
    return found if len(found) > 1 else {}


def paired_comparison(
    examples: list[labelstore.Example], mine: Evaluation, theirs: Evaluation | None, policy: GatePolicy
) -> Comparison | None:
    """The paired bootstrap of both models on the gold images, by patient, overall and for each
    site the report compares."""
    candidate = mine.probabilities
    champion = theirs.probabilities if theirs is not None else None
    if not examples or candidate is None:
        return None
    names = services().class_names
    truth = np.array([names.index(example.label) for example in examples])
    groups = np.array([example.group or f"image:{example.image_id}" for example in examples])
    sites = np.array([example.site or "unknown" for example in examples])

    def compare(rows: np.ndarray) -> Comparison:
        return paired_bootstrap(
            truth[rows],
            candidate[rows],
            champion[rows] if champion is not None else None,
            names,
            groups[rows],
            resamples=policy.bootstrap_resamples,
            confidence=policy.confidence,
            seed=policy.bootstrap_seed,
        )

    per_site = {site: compare(sites == site) for site in mine.report.get("per_site") or {}}
    return replace(compare(np.ones(len(examples), dtype=bool)), per_site=per_site)


def recent_agreement() -> float | None:
    """Share of the latest doctor labels (gold reads aside) that confirmed the model."""
    rows = (
        db.session.execute(
            db.select(Label.agreed)
            .join(Image, Image.id == Label.image_id)
            .where(Label.agreed.is_not(None), Image.is_gold.is_(False))
            .order_by(Label.id.desc())
            .limit(RECENT_LABELS)
        )
        .scalars()
        .all()
    )
    return float(np.mean(rows)) if rows else None


def run_gate(version: int) -> GateReport:
    """Evaluate `version` and the champion on one frozen gold snapshot and store the verdict."""
    settings, registry = services().settings, services().registry
    snapshot, examples = freeze_gold()
    champion = registry.version_for(CHAMPION)
    mine = evaluate_version(version, examples)
    theirs = evaluate_version(champion, examples) if champion is not None else None
    result = check(
        mine.report,
        theirs.report if theirs else None,
        settings.gate.policy,
        snapshot.size,
        new_classes=_new_classes(mine, theirs),
        comparison=paired_comparison(examples, mine, theirs, settings.gate.policy),
    )
    flipped = []
    if theirs is not None:
        gold = dict(map(tuple, snapshot.items))
        flipped = [
            {"image_id": image_id, "gold": gold[image_id], "champion": theirs.predicted[image_id], "candidate": label}
            for image_id, label in mine.predicted.items()
            if theirs.predicted.get(image_id) != label
        ]
    report = GateReport(
        model_version=version,
        champion_version=champion,
        snapshot=snapshot,
        passed=result.passed,
        result=result.to_dict(),
        candidate_metrics=mine.report,
        champion_metrics=theirs.report if theirs else None,
        flipped=flipped,
    )
    db.session.add(report)
    store_gold_scores(version, snapshot, examples, mine.probabilities)
    if theirs is not None and champion is not None:  # the champion's scores: there is a champion
        store_gold_scores(champion, snapshot, examples, theirs.probabilities)
    audit.record(
        audit.Kind.GATE,
        audit.SYSTEM,
        model_version=version,
        from_version=champion,
        reason="passed" if result.passed else "; ".join(result.failures),
        details={"snapshot": snapshot.content_hash, "gold_size": snapshot.size},
    )
    delta = _auc_delta(mine.report, theirs.report if theirs else None)
    run = db.session.execute(db.select(TrainingRun).filter_by(model_version=version)).scalar_one_or_none()
    if run is not None and delta is not None:
        run.metrics = dict(run.metrics or {}, gold_macro_auc_delta=delta)  # read by the plateau rule
    db.session.commit()
    _record_in_registry(version, report, mine)
    return report


def store_gold_scores(
    version: int, snapshot: GoldSnapshot, examples: list[labelstore.Example], probabilities: np.ndarray | None
) -> None:
    """Keep `version`'s probabilities for each image of `snapshot` (the gate's caller commits), for the
    dashboard's curves. A version scored twice on one frozen snapshot gives the same numbers, so the
    first rows stay."""
    if probabilities is None or not examples:
        return
    if snapshot.id is None:
        db.session.flush()
    exists = db.session.execute(
        db.select(GoldScore.id).filter_by(model_version=version, snapshot_id=snapshot.id).limit(1)
    ).first()
    if exists:
        return
    names = services().class_names
    for example, row in zip(examples, probabilities):
        db.session.add(
            GoldScore(
                model_version=version,
                snapshot_id=snapshot.id,
                image_id=example.image_id,
                true_label=example.label,
                probabilities={name: float(p) for name, p in zip(names, row)},
            )
        )


def _new_classes(mine: Evaluation, theirs: Evaluation | None) -> list[str]:
    """Classes the candidate predicts that the champion's head does not have."""
    if theirs is None:
        return []
    renamed = catalog.aliases()
    known = {renamed.get(name, name) for name in theirs.model_classes}
    return [name for name in mine.model_classes if renamed.get(name, name) not in known]


def _auc_delta(mine: dict, theirs: dict | None) -> float | None:
    if theirs is None or mine.get("macro_auc") is None or theirs.get("macro_auc") is None:
        return None
    return float(mine["macro_auc"] - theirs["macro_auc"])


def _record_in_registry(version: int, report: GateReport, evaluation: Evaluation) -> None:
    registry, names = services().registry, services().class_names
    registry.set_tags(
        version, {"gate_passed": report.passed, "gold_snapshot": report.snapshot.content_hash, "gate_report": report.id}
    )
    if evaluation.report["n"] == 0:
        return  # an empty gold set measures nothing: log no numbers that look like measurements
    registry.log_version_metrics(version, flat_metrics(evaluation.report), prefix="gold_")
    figure = confusion_matrix_figure(evaluation.report, names, title=f"v{version} on gold set")
    registry.log_version_figure(version, figure, f"gate/confusion_v{version}_report{report.id}.png")


def latest_report(version: int) -> GateReport | None:
    return db.session.execute(
        db.select(GateReport).filter_by(model_version=version).order_by(GateReport.id.desc()).limit(1)
    ).scalar_one_or_none()


def gate_verdicts() -> dict[int, dict]:
    """The latest gate verdict and decision per model version."""
    latest = db.select(func.max(GateReport.id)).group_by(GateReport.model_version)
    reports = db.session.execute(db.select(GateReport).where(GateReport.id.in_(latest))).scalars()
    return {
        r.model_version: {
            "passed": r.passed,
            "decision": r.decision,
            "failures": r.result["failures"],
            "below_floor": r.result.get("below_floor", []),
            "better": r.result.get("better"),
            "floors_missed": floors_missed(r),
            "champion_version": r.champion_version,
            "gold_snapshot": r.snapshot.content_hash,
            "report_id": r.id,
        }
        for r in reports
    }


def report_document(report: GateReport) -> dict:
    """A gate report as the API shows it: the verdict, every check in words, and the intervals
    (reports from before the paired bootstrap have none: null)."""
    result = report.result
    return {
        "report_id": report.id,
        "version": report.model_version,
        "champion_version": report.champion_version,
        "passed": report.passed,
        "verdict": result.get("verdict", "passed" if report.passed else "failed"),
        "better": result.get("better"),
        "better_reason": result.get("better_reason", ""),
        "failures": result["failures"],
        "below_floor": result.get("below_floor", []),
        "uncertain": result.get("uncertain", []),
        "few_gold": result.get("few_gold", []),
        "checks": result.get("checks", []),
        "comparison": result.get("comparison"),
        "decision": report.decision,
        "gold_snapshot": report.snapshot.content_hash,
        "gold_size": report.snapshot.size,
        "created_at": report.created_at.isoformat() + "Z",
    }


def floors_missed(report: GateReport) -> list[str]:
    """The classes whose clinical floor this report's model missed: blocking, or credibly below a
    floor its champion missed too (flagged)."""
    return _floors(report, lambda check: not check["passed"] or check.get("status") == "below_floor")


def floors_uncertain(report: GateReport) -> list[str]:
    """The classes whose floor this report's model is under by a margin the gold set cannot confirm."""
    return _floors(report, lambda check: check["passed"] and check.get("status") == "uncertain")


def _floors(report: GateReport, which: Callable[[dict], bool]) -> list[str]:
    return [
        check["metric"].removeprefix("sensitivity_")
        for check in report.result.get("checks", [])
        if check["rule"] == "min_sensitivity" and which(check)
    ]
