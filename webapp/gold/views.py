"""Gold-set pages: engineers pick images from thumbnails, doctors read them blind, adjudicators settle."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length

from webapp.auth import access
from webapp.converters import bounded_int
from webapp.extensions import db
from webapp.gold import goldset, pool
from webapp.models import GoldItem
from webapp.services import services

bp = Blueprint("gold", __name__, template_folder="templates")

MAX_MARK = 1000  # ids in one request


class MarkForm(FlaskForm):
    # typed ids, the fallback to ticking thumbnails; both post as `image_ids`
    image_ids = StringField("Image ids", validators=[Length(max=5000)])


@bp.get("/gold")
def page():
    chosen = pool.PoolFilter.from_request(request.args)
    found, total = pool.candidates(chosen)
    items = (
        db.session.execute(db.select(GoldItem).order_by(GoldItem.status, GoldItem.image_id).limit(500)).scalars().all()
    )
    sites = pool.sites()
    return render_template(
        "gold/gold.html",
        items=items,
        counts=goldset.counts(),
        form=MarkForm(),
        reads={item.image_id: goldset.reads(item.image_id) for item in items if item.status == "disputed"},
        settles={item.image_id for item in goldset.disputed_for(current_user)},
        classes=services().class_names,
        candidates=found,
        total=total,
        unsure_count=pool.unsure_count(),
        chosen=chosen,
        page_size=pool.PAGE_SIZE,
        sites=[s for s in sites if s],
        any_without_site=None in sites,
        no_site=pool.NO_SITE,
    )


@bp.post("/gold/mark")
def mark():
    form = MarkForm()
    back = url_for("gold.page", **pool.PoolFilter.from_request(request.form).args())
    # ticked thumbnails and the typed field all arrive as `image_ids`
    typed = " ".join(request.form.getlist("image_ids")) if form.validate_on_submit() else ""
    try:
        ids = [bounded_int(part) for part in typed.replace(",", " ").split()]
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
def read():
    """Blind gold reads for labelers (security.label_roles), and for adjudicators the disputed images
    to settle; an adjudicator who does not label (an admin, by default) sees only those."""
    disputed = goldset.disputed_for(current_user)
    reads_blind = access.may_label(current_user)
    return render_template(
        "gold/read.html",
        item=goldset.next_read(current_user) if reads_blind else None,
        reads_blind=reads_blind,
        classes=services().class_names,
        disputed=disputed,
        reads={item.image_id: goldset.reads(item.image_id) for item in disputed},
    )


@bp.post("/gold/read/<int:image_id>")
def record_read(image_id: int):
    try:
        goldset.record_read(
            current_user,
            image_id,
            request.form.get("label", ""),
            services().class_names,
            time_spent_ms=request.form.get("time_spent_ms", type=bounded_int),
        )
        flash(f"Read of gold image {image_id} saved.", "success")
    except goldset.GoldError as error:
        flash(str(error), "error")
    return redirect(url_for("gold.read"))
