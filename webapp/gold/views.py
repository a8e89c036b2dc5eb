"""Gold-set pages: engineers pick images from thumbnails, doctors read them blind, adjudicators settle."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length

from webapp.auth.roles import roles_required
from webapp.extensions import db
from webapp.gold import goldset
from webapp.models import GoldItem, Image, Label, Prediction
from webapp.services import services

bp = Blueprint("gold", __name__, template_folder="templates")

PAGE_SIZE = 120
NO_SITE = "-"   # the site filter's value for images that came without one
MAX_MARK = 1000  # ids in one request


class MarkForm(FlaskForm):
    # typed ids, the fallback to ticking thumbnails; both post as `image_ids`
    image_ids = StringField("Image ids", validators=[Length(max=5000)])


@dataclass(frozen=True)
class PoolFilter:
    """What the engineer narrowed the candidate thumbnails to; travels in the query string."""

    predicted: str = ""        # the latest prediction's class; "" = any
    site: str = ""             # Image.site; "" = any, NO_SITE = none recorded
    show: str = "unreviewed"   # unreviewed (can become gold) | all (reviewed ones shown, not pickable)
    page: int = 1

    @classmethod
    def from_request(cls, values) -> PoolFilter:
        show = values.get("show", "unreviewed")
        return cls(predicted=values.get("predicted", ""), site=values.get("site", ""),
                   show=show if show in ("unreviewed", "all") else "unreviewed",
                   page=max(1, values.get("page", 1, type=int) or 1))

    def args(self, **changes) -> dict:
        """Query-string arguments for a link to this view (defaults left out)."""
        values = asdict(self) | changes
        return {key: value for key, value in values.items() if value != asdict(PoolFilter())[key]}


@dataclass
class Candidate:
    image: Image
    prediction: Prediction | None
    reviewed: bool


def _candidates(chosen: PoolFilter) -> tuple[list[Candidate], int]:
    """Images that could join the gold set under goldset.mark's rules (not trained on, not gold,
    no doctor's label), with their latest prediction; labeled ones too when asked to show all."""
    latest = (db.select(Prediction.image_id, db.func.max(Prediction.id).label("prediction_id"))
              .group_by(Prediction.image_id).subquery())
    reviewed = db.exists().where(Label.image_id == Image.id)
    query = (db.select(Image, Prediction, reviewed.label("reviewed"))
             .outerjoin(latest, latest.c.image_id == Image.id)
             .outerjoin(Prediction, Prediction.id == latest.c.prediction_id)
             .where(Image.split != "train", Image.is_gold.is_(False)))
    if chosen.show == "unreviewed":
        query = query.where(~reviewed)
    if chosen.predicted:
        query = query.where(Prediction.predicted_class == chosen.predicted)
    if chosen.site == NO_SITE:
        query = query.where(Image.site.is_(None))
    elif chosen.site:
        query = query.where(Image.site == chosen.site)
    total = db.session.execute(db.select(db.func.count()).select_from(query.subquery())).scalar_one()
    rows = db.session.execute(query.order_by(Image.id).limit(PAGE_SIZE)
                              .offset((chosen.page - 1) * PAGE_SIZE)).all()
    return [Candidate(image, prediction, bool(was_reviewed)) for image, prediction, was_reviewed in rows], total


def _sites() -> list[str | None]:
    return list(db.session.execute(db.select(Image.site).where(Image.split != "train", Image.is_gold.is_(False))
                                   .distinct().order_by(Image.site)).scalars())


@bp.get("/gold")
@roles_required("engineer")
def page():
    chosen = PoolFilter.from_request(request.args)
    candidates, total = _candidates(chosen)
    items = db.session.execute(db.select(GoldItem).order_by(GoldItem.status, GoldItem.image_id)
                               .limit(500)).scalars().all()
    sites = _sites()
    return render_template("gold/gold.html", items=items, counts=goldset.counts(), form=MarkForm(),
                           reads={item.image_id: goldset.reads(item.image_id) for item in items
                                  if item.status == "disputed"},
                           settles={item.image_id for item in goldset.disputed_for(current_user)},
                           classes=services().class_names, candidates=candidates, total=total,
                           chosen=chosen, page_size=PAGE_SIZE, sites=[s for s in sites if s],
                           any_without_site=None in sites, no_site=NO_SITE)


@bp.post("/gold/mark")
@roles_required("engineer")
def mark():
    form = MarkForm()
    back = url_for("gold.page", **PoolFilter.from_request(request.form).args())
    # ticked thumbnails and the typed field all arrive as `image_ids`
    typed = " ".join(request.form.getlist("image_ids")) if form.validate_on_submit() else ""
    try:
        ids = [int(part) for part in typed.replace(",", " ").split()]
    except ValueError:
        ids = []
    if len(ids) > MAX_MARK:
        flash(f"Mark at most {MAX_MARK} images at a time.", "error")
        return redirect(back)
    if not ids:
        flash("Tick images, or give image ids as numbers separated by spaces or commas.", "error")
        return redirect(back)
    marked = goldset.mark(ids, current_user)
    flash(marked.summary(), "success" if marked.added else "error")
    return redirect(back)


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
    back = "gold.read" if request.form.get("next") == "read" else "gold.page"
    return redirect(url_for(back))


@bp.get("/gold/read")
@roles_required("doctor")
def read():
    """Blind gold reads for doctors, and for adjudicators the disputed images to settle."""
    disputed = goldset.disputed_for(current_user)
    return render_template("gold/read.html", item=goldset.next_read(current_user),
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
    return redirect(url_for("gold.read"))
