"""Review pages: the next most informative image, the prediction page, confirm, correct, unsure or skip."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from webapp.auth import access
from webapp.auth.redirects import safe_next
from webapp.classes import catalog
from webapp.converters import bounded_int
from webapp.extensions import db
from webapp.gold import goldset
from webapp.models import Label, Prediction
from webapp.review import queue
from webapp.services import services

bp = Blueprint("review", __name__, template_folder="templates")


# a Jinja global, not a context processor: the label form's macro is imported without the context
@bp.record_once
def _template_helpers(state) -> None:
    state.app.jinja_env.globals["label_text_max"] = queue.MAX_TEXT


@bp.get("/")
def home():
    # labels are a doctor's: the other roles start where their work is
    return redirect(url_for("review.next_image" if access.may_label(current_user) else "training.page"))


@bp.get("/review")
def next_image():
    served = queue.serve(current_user)
    if served is None:
        return render_template("review/empty.html", your_skips=queue.skips_by(current_user))
    return render_template(
        "review/review.html",
        image=served.image,
        prediction=served.prediction,
        classes=services().class_names,
        strategy=queue.current_strategy(),
        skipped_before=queue.skips_of_image(served.image.id),
        your_skips=queue.skips_by(current_user),
    )


def _prediction_id(raw: str | None) -> int | None:
    """The prediction the doctor answered: absent means the latest; anything else must name one."""
    if raw in (None, ""):
        return None
    try:
        return bounded_int(raw)
    except ValueError:
        raise queue.LabelError(f"prediction_id {raw[:40]!r} names no prediction.") from None


@bp.post("/review/<int:image_id>")
def submit(image_id: int):
    label = request.form.get("label", "")
    prediction_id = _prediction_id(request.form.get("prediction_id"))
    spent = request.form.get("time_spent_ms", type=bounded_int)
    back = safe_next(request.form.get("next"), url_for("review.next_image"))
    form = request.form
    try:
        saved = queue.submit(
            current_user,
            image_id,
            label,
            prediction_id=prediction_id,
            time_spent_ms=spent,
            unsure=form.get("unsure") == "1",
            findings=form.get("findings"),
            impression=form.get("impression"),
            comment=form.get("comment"),
        )
    except queue.LabelError as error:
        if error.status != 409:
            raise
        flash(str(error), "error")  # another doctor was first: on to the next image
        return redirect(back)
    if saved.created and saved.label.unsure:
        flash(
            f"Saved as unsure (leaning {catalog.display(saved.label.label)}): image {image_id} is offered for "
            "a second opinion and nothing trains on it.",
            "success",
        )
    elif saved.created:
        flash(f"Saved: image {image_id} labeled {catalog.display(saved.label.label)}.", "success")
    else:
        shown = catalog.display(saved.label.label)
        flash(f"Image {image_id} was already labeled by you ({shown}); kept the first answer.")
    return redirect(back)


@bp.post("/review/<int:image_id>/skip")
def skip(image_id: int):
    try:
        queue.skip(current_user, image_id)
        flash(f"Skipped image {image_id}: it goes back to the queue for another doctor.", "success")
    except queue.LabelError as error:
        if error.status != 409:
            raise
        flash(str(error), "error")  # no longer yours (a claim that ran out and was taken): on to the next
    return redirect(url_for("review.next_image"))


@bp.get("/predictions/<int:prediction_id>")
def prediction_page(prediction_id: int):
    prediction = db.get_or_404(Prediction, prediction_id)
    goldset.visible_image(prediction.image_id)  # a gold image's prediction stays hidden until adjudicated
    mine = db.session.execute(
        db.select(Label).filter_by(image_id=prediction.image_id, user_id=current_user.id)
    ).scalar_one_or_none()
    return render_template(
        "review/prediction.html",
        prediction=prediction,
        image=prediction.image,
        my_label=mine,
        classes=services().class_names,
    )
