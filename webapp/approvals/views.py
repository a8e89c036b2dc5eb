"""Approvals and history pages: engineers compare, decide, promote and roll back."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user

from learning.metrics import PER_CLASS_METRICS, metric_key
from registry.uris import CANDIDATE, CHAMPION
from webapp.approvals import DecisionError, decisions, figures, gate_run, history, recovery
from webapp.approvals.forms import DecisionForm, RollbackForm
from webapp.classes.catalog import display
from webapp.services import services

bp = Blueprint("approvals", __name__, template_folder="templates")


def metric_rows(candidate: dict, champion: dict | None, comparison: dict | None = None) -> list[dict]:
    """Every gate metric side by side, with the candidate's change against the champion and, where
    the report has the paired bootstrap, each one's interval (reports from before it have none)."""
    intervals = (comparison or {}).get("metrics", {})

    def row(label, key, mine, theirs, lower_is_better=False):
        delta = mine - theirs if mine is not None and theirs is not None else None
        found = intervals.get(key) or {}
        return {
            "label": label,
            "candidate": mine,
            "champion": theirs,
            "delta": delta,
            "lower_is_better": lower_is_better,
            "candidate_interval": found.get("candidate"),
            "champion_interval": found.get("champion"),
            "delta_interval": found.get("difference"),
            "mcnemar_p": found.get("mcnemar_p"),
        }

    champion = champion or {}
    rows = [
        row("accuracy", "accuracy", candidate.get("accuracy"), champion.get("accuracy")),
        row("macro AUC", "macro_auc", candidate.get("macro_auc"), champion.get("macro_auc")),
        row("ECE (calibration error)", "ece", candidate.get("ece"), champion.get("ece"), True),
    ]
    for name, values in candidate.get("per_class", {}).items():
        theirs = champion.get("per_class", {}).get(name, {})
        for key in PER_CLASS_METRICS:
            rows.append(row(f"{display(name)}: {key}", metric_key(key, name), values.get(key), theirs.get(key)))
    return rows


@bp.get("/approvals")
def page():
    if recovery.unfinished():
        recovery.reconcile()  # a process died mid-change: finish it before showing the aliases
    registry = services().registry
    candidate, champion = registry.version_for(CANDIDATE), registry.version_for(CHAMPION)
    report = gate_run.latest_report(candidate) if candidate is not None else None
    baseline = gate_run.latest_report(champion) if champion is not None and candidate is None else None
    return render_template(
        "approvals/approvals.html",
        candidate=candidate,
        champion=champion,
        report=report,
        aliases=registry.aliases(),
        classes=services().class_names,
        rows=metric_rows(report.candidate_metrics, report.champion_metrics, report.result.get("comparison"))
        if report
        else [],
        decision_form=DecisionForm(),
        rollback_form=RollbackForm(),
        verdicts=gate_run.gate_verdicts(),
        versions=registry.versions(),
        min_site_gold=services().settings.gate.min_site_gold,
        baseline=baseline,
        baseline_rows=metric_rows(baseline.candidate_metrics, None, baseline.result.get("comparison"))
        if baseline
        else [],
        floors_missed=gate_run.floors_missed,
        floors_uncertain=gate_run.floors_uncertain,
        charts=_charts(report, baseline, champion),
        comparison_link=url_for("dashboard.compare", a=report.champion_version, b=candidate)
        if report is not None and report.champion_version is not None
        else None,
    )


def _charts(report, baseline, champion: int | None) -> list[tuple[str, str]]:
    """The candidate and the champion side by side (or the champion alone, when no candidate waits)."""
    if report is not None:
        sides = [figures.Side(f"candidate v{report.model_version}", report.candidate_metrics, "candidate")]
        if report.champion_metrics:
            sides.append(figures.Side(f"champion v{report.champion_version}", report.champion_metrics, "champion"))
        return figures.side_by_side(sides, report.result.get("comparison"))
    if baseline is not None:
        side = figures.Side(f"champion v{champion}", baseline.candidate_metrics, "candidate")
        return figures.side_by_side([side], baseline.result.get("comparison"))
    return []


@bp.post("/approvals/<int:version>/decide")
def decide(version: int):
    form = DecisionForm()
    if not form.validate_on_submit():
        flash("Write a reason for the decision.", "error")
        return redirect(url_for("approvals.page"))
    try:
        decisions.decide(
            version,
            current_user,
            approve=form.decision.data == "approve",
            reason=form.reason.data,
            override=bool(form.override.data),
        )
    except DecisionError as error:
        flash(str(error), "error")
    else:
        flash(
            f"Version {version} {'promoted to champion' if form.decision.data == 'approve' else 'rejected'}.", "success"
        )
    return redirect(url_for("approvals.page"))


@bp.post("/approvals/rollback")
def rollback():
    form = RollbackForm()
    if not form.validate_on_submit():
        flash("Write a reason for the rollback.", "error")
        return redirect(url_for("approvals.page"))
    try:
        event = decisions.rollback(current_user, form.reason.data, expected_champion=form.expected_champion.data)
    except DecisionError as error:
        flash(str(error), "error")
    else:
        flash(f"Rolled back: version {event.model_version} is champion again.", "success")
    return redirect(url_for("approvals.page"))


@bp.post("/approvals/<int:version>/gate")
def rerun_gate(version: int):
    """Run the gate again, e.g. after a rollback changed the champion it compared with."""
    if services().registry.version_for(CANDIDATE) != version:
        flash(f"Version {version} is not the current candidate.", "error")
    else:
        report = gate_run.run_gate(version)
        flash(f"Gate run again for v{version}: {'passed' if report.passed else 'failed'}.", "success")
    return redirect(url_for("approvals.page"))


@bp.get("/history", endpoint="history")
def history_page():
    return render_template(
        "approvals/history.html",
        events=history.from_request(),
        kinds=history.KINDS,
        model_kinds=history.MODEL_KINDS,
        selected=history.requested_kinds(),
        details_text=history.details_text,
    )


@bp.app_template_filter("delta_class")
def delta_class(delta: float | None, lower_is_better: bool = False) -> str:
    if delta is None or abs(delta) < 1e-9:
        return ""
    better = delta < 0 if lower_is_better else delta > 0
    return "delta up" if better else "delta down"
