"""Approvals, gold set and history pages: engineers compare, decide, promote and roll back."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, IntegerField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, Optional

from registry.uris import CANDIDATE, CHAMPION
from webapp import gold as goldset
from webapp import promotion
from webapp.auth import roles_required
from webapp.extensions import db
from webapp.models import GoldItem
from webapp.services import services

bp = Blueprint("approvals", __name__)


class DecisionForm(FlaskForm):
    decision = HiddenField(validators=[AnyOf(["approve", "reject"])])
    reason = TextAreaField("Reason", validators=[DataRequired(), Length(max=2000)])
    override = BooleanField("Override the failed gate")


class RollbackForm(FlaskForm):
    reason = TextAreaField("Reason", validators=[DataRequired(), Length(max=2000)])
    champion = IntegerField(validators=[Optional()])   # the champion the engineer saw


class MarkForm(FlaskForm):
    image_ids = StringField("Image ids", validators=[DataRequired(), Length(max=5000)])


def metric_rows(candidate: dict, champion: dict | None) -> list[dict]:
    """Every gate metric side by side, with the candidate's change against the champion."""
    def row(label, mine, theirs, lower_is_better=False):
        delta = mine - theirs if mine is not None and theirs is not None else None
        return {"label": label, "candidate": mine, "champion": theirs, "delta": delta,
                "lower_is_better": lower_is_better}
    champion = champion or {}
    rows = [row("accuracy", candidate.get("accuracy"), champion.get("accuracy")),
            row("macro AUC", candidate.get("macro_auc"), champion.get("macro_auc")),
            row("ECE (calibration error)", candidate.get("ece"), champion.get("ece"), True)]
    for name, values in candidate.get("per_class", {}).items():
        theirs = champion.get("per_class", {}).get(name, {})
        for key in ("sensitivity", "specificity", "precision", "f1"):
            rows.append(row(f"{name}: {key}", values.get(key), theirs.get(key)))
    return rows


@bp.get("/approvals")
@roles_required("engineer")
def page():
    if promotion.unfinished():
        promotion.reconcile()  # a process died mid-change: finish it before showing the aliases
    registry = services().registry
    candidate, champion = registry.version_for(CANDIDATE), registry.version_for(CHAMPION)
    report = promotion.latest_report(candidate) if candidate is not None else None
    return render_template("approvals/approvals.html", candidate=candidate, champion=champion,
                           report=report, aliases=registry.aliases(), classes=services().class_names,
                           rows=metric_rows(report.candidate_metrics, report.champion_metrics) if report else [],
                           decision_form=DecisionForm(), rollback_form=RollbackForm(),
                           verdicts=promotion.gate_verdicts(), versions=registry.versions())


@bp.post("/approvals/<int:version>/decide")
@roles_required("engineer")
def decide(version: int):
    form = DecisionForm()
    if not form.validate_on_submit():
        flash("Write a reason for the decision.", "error")
        return redirect(url_for("approvals.page"))
    try:
        promotion.decide(version, current_user, approve=form.decision.data == "approve",
                         reason=form.reason.data, override=bool(form.override.data))
    except promotion.DecisionError as error:
        flash(str(error), "error")
    else:
        flash(f"Version {version} {'promoted to champion' if form.decision.data == 'approve' else 'rejected'}.",
              "success")
    return redirect(url_for("approvals.page"))


@bp.post("/approvals/rollback")
@roles_required("engineer")
def rollback():
    form = RollbackForm()
    if not form.validate_on_submit():
        flash("Write a reason for the rollback.", "error")
        return redirect(url_for("approvals.page"))
    try:
        event = promotion.rollback(current_user, form.reason.data, expected_champion=form.champion.data)
    except promotion.DecisionError as error:
        flash(str(error), "error")
    else:
        flash(f"Rolled back: version {event.model_version} is champion again.", "success")
    return redirect(url_for("approvals.page"))


@bp.post("/approvals/<int:version>/gate")
@roles_required("engineer")
def rerun_gate(version: int):
    """Run the gate again, e.g. after a rollback changed the champion it compared with."""
    if services().registry.version_for(CANDIDATE) != version:
        flash(f"Version {version} is not the current candidate.", "error")
    else:
        report = promotion.run_gate(version)
        flash(f"Gate run again for v{version}: {'passed' if report.passed else 'failed'}.", "success")
    return redirect(url_for("approvals.page"))


@bp.get("/history")
@roles_required("engineer")
def history():
    return render_template("approvals/history.html", events=promotion.history())


@bp.get("/gold")
@roles_required("engineer")
def gold():
    items = db.session.execute(db.select(GoldItem).order_by(GoldItem.status, GoldItem.image_id)
                               .limit(500)).scalars().all()
    return render_template("approvals/gold.html", items=items, counts=goldset.counts(), form=MarkForm(),
                           reads={item.image_id: goldset.reads(item.image_id) for item in items
                                  if item.status == "disputed"},
                           settles={item.image_id for item in goldset.disputed_for(current_user)},
                           classes=services().class_names)


@bp.post("/gold/mark")
@roles_required("engineer")
def mark():
    form = MarkForm()
    try:
        ids = [int(part) for part in form.image_ids.data.replace(",", " ").split()] if form.validate_on_submit() else []
    except ValueError:
        ids = []
    if not ids:
        flash("Give image ids as numbers separated by spaces or commas.", "error")
        return redirect(url_for("approvals.gold"))
    marked = goldset.mark(ids, current_user)
    flash(marked.summary(), "success" if marked.added else "error")
    return redirect(url_for("approvals.gold"))


@bp.post("/gold/<int:image_id>/adjudicate")
@login_required
def adjudicate(image_id: int):
    try:
        goldset.adjudicate(current_user, image_id, request.form.get("label", ""), services().class_names)
        flash(f"Gold image {image_id} settled.", "success")
    except goldset.GoldError as error:
        if error.status == 403:
            abort(403)
        flash(str(error), "error")
    back = "approvals.read" if request.form.get("next") == "read" else "approvals.gold"
    return redirect(url_for(back))


@bp.get("/gold/read")
@roles_required("doctor")
def read():
    """Blind gold reads for doctors, and for adjudicators the disputed images to settle."""
    disputed = goldset.disputed_for(current_user)
    return render_template("approvals/read.html", item=goldset.next_read(current_user),
                           classes=services().class_names, disputed=disputed,
                           reads={item.image_id: goldset.reads(item.image_id) for item in disputed})


@bp.post("/gold/read/<int:image_id>")
@roles_required("doctor")
def record_read(image_id: int):
    try:
        goldset.record_read(current_user, image_id, request.form.get("label", ""), services().class_names,
                            time_spent_ms=request.form.get("time_spent_ms", type=int))
        flash(f"Read of gold image {image_id} saved.", "success")
    except goldset.GoldError as error:
        flash(str(error), "error")
    return redirect(url_for("approvals.read"))


@bp.app_template_filter("delta_class")
def delta_class(delta: float | None, lower_is_better: bool = False) -> str:
    if delta is None or abs(delta) < 1e-9:
        return ""
    better = delta < 0 if lower_is_better else delta > 0
    return "delta up" if better else "delta down"
