"""Review: the next most informative image, the prediction page, confirm or correct."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required

from webapp import explanations, predictions, reviewqueue
from webapp.extensions import db
from webapp.models import Image, Label, Prediction
from webapp.services import services

bp = Blueprint("review", __name__)


@bp.get("/")
@login_required
def home():
    return redirect(url_for("review.next_image"))


@bp.get("/review")
@login_required
def next_image():
    image = reviewqueue.next_for(current_user)
    if image is None:
        return render_template("review/empty.html")
    prediction = predictions.predict(image)
    db.session.commit()
    return render_template("review/review.html", image=image, prediction=prediction,
                           classes=services().class_names, strategy=reviewqueue.current_strategy())


@bp.post("/review/<int:image_id>")
@login_required
def submit(image_id: int):
    label = request.form.get("label", "")
    prediction_id = request.form.get("prediction_id", type=int)
    spent = request.form.get("time_spent_ms", type=int)
    saved = reviewqueue.submit(current_user, image_id, label, prediction_id=prediction_id,
                               time_spent_ms=spent)
    if saved.created:
        flash(f"Saved: image {image_id} labeled {saved.label.label}.", "success")
    else:
        flash(f"Image {image_id} was already labeled by you ({saved.label.label}); kept the first answer.")
    target = request.form.get("next", "")
    return redirect(target if target.startswith("/") and not target.startswith("//")
                    else url_for("review.next_image"))


@bp.get("/predictions/<int:prediction_id>")
@login_required
def prediction_page(prediction_id: int):
    prediction = db.get_or_404(Prediction, prediction_id)
    mine = db.session.execute(db.select(Label).filter_by(image_id=prediction.image_id,
                                                         user_id=current_user.id)).scalar_one_or_none()
    return render_template("review/prediction.html", prediction=prediction, image=prediction.image,
                           my_label=mine, classes=services().class_names)


@bp.get("/images/<int:image_id>.png")
@login_required
def image_file(image_id: int):
    image = db.get_or_404(Image, image_id)
    return send_file(services().store.path(image.path), mimetype="image/png", max_age=3600)


@bp.get("/predictions/<int:prediction_id>/heatmap.png")
@login_required
def heatmap(prediction_id: int):
    prediction = db.get_or_404(Prediction, prediction_id)
    path = explanations.heatmap_path(prediction)
    if path is None:
        abort(404)
    return send_file(path, mimetype="image/png", max_age=3600)
