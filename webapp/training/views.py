"""Training page: the running job with live progress, triggers, past runs, Train now, strategy."""

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
from flask_login import current_user

from learning.strategies import available
from webapp.extensions import db
from webapp.models import TrainingRun
from webapp.review import queue
from webapp.services import services
from webapp.training import jobs, runs

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
    }


@bp.get("/training")
def page():
    runs = db.session.execute(db.select(TrainingRun).order_by(TrainingRun.id.desc()).limit(50)).scalars().all()
    tracking_uri = current_app.config["MLFLOW_TRACKING_URI"]
    # a tracking server serves its own UI; a local store needs `mlflow ui` started beside the app
    mlflow_ui = tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) else MLFLOW_UI_LOCAL
    return render_template(
        "training/training.html",
        runs=runs,
        state=jobs.current_trigger_state(),
        scheduler=services().settings.scheduler,
        tracking_uri=tracking_uri,
        mlflow_ui=mlflow_ui,
        local_store=mlflow_ui == MLFLOW_UI_LOCAL,
        strategies=available(),
        strategy=queue.current_strategy(),
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
