"""Training page: the running job with live progress, its time left and its curves, triggers, past
runs, Train now, strategy; a run's own page, and two runs compared."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user

from learning.strategies import available
from webapp.errors import Problem
from webapp.extensions import db
from webapp.models import TrainingRun
from webapp.review import queue
from webapp.services import services
from webapp.training import curves, jobs, runs, timing

bp = Blueprint("training", __name__, template_folder="templates")
MLFLOW_UI_LOCAL = "http://127.0.0.1:5001"


def run_to_dict(run: TrainingRun) -> dict:
    return {
        "id": run.id,
        "status": run.status,
        "trigger": run.trigger,
        "requested_by": run.requested_by.username if run.requested_by else None,
        "progress": run.progress,
        "error": run.error,
        "model_version": run.model_version,
        "parent_version": run.parent_version,
        "num_labels": run.num_labels,
        "num_train": run.num_train,
        "mlflow_run_id": run.mlflow_run_id,
        "metrics": run.metrics,
        "created_at": run.created_at.isoformat() + "Z",
        "duration_s": run.duration_s,
        "timing": timing.estimate(run, timing.past_durations(run.kind)).to_dict(),
        "epochs_reported": len(curves.history(run.progress)),
        "page": url_for("training.run_page", run_id=run.id),
        "curves": {chart: url_for("training.curves_svg", run_id=run.id, chart=chart) for chart in curves.CHARTS},
    }


@bp.get("/training")
def page():
    runs = db.session.execute(db.select(TrainingRun).order_by(TrainingRun.id.desc()).limit(50)).scalars().all()
    finished = [run for run in runs if curves.history(run.progress)]
    return render_template(
        "training/training.html",
        runs=runs,
        state=jobs.current_trigger_state(),
        scheduler=services().settings.scheduler,
        strategies=available(),
        strategy=queue.current_strategy(),
        comparable=finished,
        default_pair=[run.id for run in finished[1::-1]] if len(finished) > 1 else [],
        duration=timing.duration,
        **_mlflow(),
    )


def _mlflow() -> dict:
    """Where the MLflow runs are, for the links that stay beside medal's own pages."""
    tracking_uri = current_app.config["MLFLOW_TRACKING_URI"]
    # a tracking server serves its own UI; a local store needs `mlflow ui` started beside the app
    mlflow_ui = tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) else MLFLOW_UI_LOCAL
    return {"tracking_uri": tracking_uri, "mlflow_ui": mlflow_ui, "local_store": mlflow_ui == MLFLOW_UI_LOCAL}


def kept_epochs(metrics: dict) -> list[int]:
    """The epochs whose weights the model is: several when it is their mean (rounds since they
    average), the best epoch for runs from before."""
    kept = metrics.get("kept_epochs") or ([metrics["best_epoch"]] if metrics.get("best_epoch") else [])
    return [int(epoch) for epoch in kept]


def kept_weights(metrics: dict) -> str:
    kept = kept_epochs(metrics)
    if not kept:
        return "—"
    if len(kept) > 1:
        return f"the mean of epochs {kept[0]}–{kept[-1]}"
    return f"epoch {kept[0]}"


def _offsets_by_class(point: dict) -> dict[str, float] | None:
    """Class -> offset. Operating points kept before 6 December name no classes: their sensitivities'
    names stand in where one was kept for every offset (a class without validation films has none)."""
    offsets = point.get("offsets", [])
    names = point.get("classes") or list(point.get("sensitivity_after") or point.get("sensitivity_before") or {})
    return dict(zip(names, offsets, strict=True)) if len(names) == len(offsets) else None


def operating_point_words(point: dict | None) -> str:
    """The offsets a run's model decides with, in a line: "—" for runs from before they were kept."""
    if not point:
        return "—"
    by_class = _offsets_by_class(point)
    if by_class is None:
        return "offsets " + ", ".join(f"{offset:+.2f}" for offset in point.get("offsets", []))
    moved = [f"{name} {offset:+.2f}" for name, offset in by_class.items() if offset != 0]
    return "offsets " + ", ".join(moved) if moved else "the most probable class (no offsets)"


def operating_point_rows(point: dict | None) -> list[dict]:
    """Per class: its floor, its validation sensitivity before and after the offsets, its offset, and
    why a floor is not met (too few validation films, or out of reach and not chased)."""
    by_class = _offsets_by_class(point) if point else None
    if not point or by_class is None:
        return []
    before, after = point.get("sensitivity_before", {}), point.get("sensitivity_after", {})
    floors, notes = point.get("floors", {}), point.get("unreachable", {})
    return [
        {
            "name": name,
            "floor": floors.get(name),
            "before": before.get(name),
            "after": after.get(name),
            "offset": offset,
            "note": notes.get(name, ""),
        }
        for name, offset in by_class.items()
    ]


def facts(run: TrainingRun) -> list[tuple[str, str]]:
    """A run's numbers as its page and the comparison list them: (what, value), "—" where unknown."""
    metrics = run.metrics or {}

    def number(value, pattern: str = "{:.3f}") -> str:
        return "—" if value is None else pattern.format(value)

    model = f"v{run.model_version}" if run.model_version else "—"
    return [
        (
            "Kind",
            {"round": "round (upper blocks on stored activations)", "full": "full fine-tune"}.get(run.kind, run.kind),
        ),
        ("Trigger", run.trigger + (f" by {run.requested_by.username}" if run.requested_by else "")),
        ("Started", run.started_at.strftime("%Y-%m-%d %H:%M UTC") if run.started_at else "—"),
        ("Duration", timing.duration(run.duration_s) if run.duration_s is not None else "—"),
        ("Doctor labels", number(run.num_labels, "{}")),
        ("Training images", number(run.num_train, "{}")),
        ("Model", model + (f" (from v{run.parent_version})" if run.parent_version else "")),
        ("Epochs run", number(metrics.get("epochs"), "{}")),
        ("Kept weights", kept_weights(metrics)),
        ("Validation AUC of the kept weights", number(metrics.get("best_val_auc"))),
        ("Operating point", operating_point_words(metrics.get("operating_point"))),
        ("Gold-set macro AUC, change against the champion", number(metrics.get("gold_macro_auc_delta"), "{:+.3f}")),
    ]


def _run(run_id: int) -> TrainingRun:
    run = db.session.get(TrainingRun, run_id)
    if run is None:
        raise Problem(f"There is no training run {run_id}.", 404)
    return run


def _run_id(value: str | None, which: str) -> int:
    """A run number from the query string: a clear 400 for text that is not one."""
    value = (value or "").strip().removeprefix("#")
    if not value:
        raise Problem(f"Choose a training run for {which}.", 400)
    if not value.isdigit() or len(value) > 9:
        raise Problem(f"{which.capitalize()} must be a training run number, like 3.", 400)
    return int(value)


@bp.get("/training/runs/<int:run_id>")
def run_page(run_id: int):
    """One run: what it trained on, its time, its per-epoch curves and metrics."""
    run = _run(run_id)
    rows = curves.history(run.progress)
    return render_template(
        "training/run.html",
        run=run,
        rows=rows,
        charts=[(chart, curves.run_chart(rows, chart)) for chart in curves.CHARTS] if rows else [],
        clock=timing.estimate(run, timing.past_durations(run.kind)),
        facts=facts(run),
        kept=kept_epochs(run.metrics or {}),
        point=(run.metrics or {}).get("operating_point"),
        point_rows=operating_point_rows((run.metrics or {}).get("operating_point")),
        others=db.session.execute(
            db.select(TrainingRun.id).where(TrainingRun.id != run.id).order_by(TrainingRun.id.desc()).limit(50)
        )
        .scalars()
        .all(),
        duration=timing.duration,
        **_mlflow(),
    )


@bp.get("/training/runs/<int:run_id>/<any(loss, validation):chart>.svg")
def curves_svg(run_id: int, chart: str) -> ResponseReturnValue:
    """A run's curves as an image, redrawn by the Training page as epochs finish."""
    svg = curves.run_chart(curves.history(_run(run_id).progress), chart)
    return svg, 200, {"Content-Type": "image/svg+xml; charset=utf-8", "Cache-Control": "no-store"}


@bp.get("/training/compare")
def compare():
    """Two runs side by side: their numbers in one table and their curves on shared axes. Opened
    without a choice, it compares the two latest runs (or says there are not two yet)."""
    if not request.args.get("a") and not request.args.get("b"):
        latest = db.session.execute(db.select(TrainingRun.id).order_by(TrainingRun.id.desc()).limit(2)).scalars().all()
        if len(latest) < 2:
            flash("Two training runs are needed for a comparison; there is not a second one yet.", "info")
            return redirect(url_for("training.page"))
        return redirect(url_for("training.compare", a=latest[1], b=latest[0]))
    a, b = (
        _run(_run_id(request.args.get(key), which)) for key, which in (("a", "the first run"), ("b", "the second run"))
    )
    if a.id == b.id:
        raise Problem("Choose two different training runs to compare.", 400)
    return render_template(
        "training/compare.html",
        sides=(a, b),
        facts=list(zip(facts(a), facts(b))),
        epochs=[curves.history(run.progress) for run in (a, b)],
        charts=curves.compared_charts({f"run #{run.id}": curves.history(run.progress) for run in (a, b)}),
        runs=db.session.execute(db.select(TrainingRun.id).order_by(TrainingRun.id.desc()).limit(50)).scalars().all(),
        duration=timing.duration,
        **_mlflow(),
    )


@bp.get("/training/status")
def status():
    """Polled by the page every two seconds for the live progress bar."""
    active = (
        db.session.execute(
            db.select(TrainingRun).where(TrainingRun.status.in_(("queued", "running"))).order_by(TrainingRun.id)
        )
        .scalars()
        .all()
    )
    return jsonify(active=[run_to_dict(run) for run in active])


@bp.post("/training/run")
def train_now():
    run = runs.enqueue("manual", current_user)
    if run.status == "running":
        flash(f"Training run {run.id} is already running; it covers this request.", "success")
    else:
        flash(
            f"Training run {run.id} is queued; the worker starts it within "
            f"{services().settings.scheduler.check_seconds} s.",
            "success",
        )
    return redirect(url_for("training.page"))


@bp.post("/training/strategy")
def strategy():
    queue.set_strategy(request.form.get("strategy", ""), current_user)
    flash(f"The review queue now asks by {queue.current_strategy().replace('_', ' ')}.", "success")
    return redirect(url_for("training.page"))
