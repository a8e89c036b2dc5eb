"""The classes settings page: engineers and admins see the classes and add or rename one."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Optional

from webapp.classes import catalog
from webapp.gold import goldset
from webapp.services import services

bp = Blueprint("classes", __name__, template_folder="templates")


class AddForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=60)])
    display = StringField("Shown as", validators=[Optional(), Length(max=80)])


class RenameForm(FlaskForm):
    old = StringField("Class", validators=[DataRequired(), Length(max=60)])
    new = StringField("New name", validators=[DataRequired(), Length(max=60)])


@bp.get("/settings/classes")
def page():
    configured = services().settings.class_names
    names = catalog.current(configured)
    gate = services().settings.gate
    return render_template(
        "classes/classes.html",
        classes=names,
        displays=catalog.displays(configured),
        usage={name: catalog.usage(name) for name in names},
        renamed=catalog.aliases(),
        gold=goldset.adjudicated_by_class(),
        min_class_gold=gate.min_class_gold,
        floors=gate.min_sensitivity,
        add_form=AddForm(),
        rename_form=RenameForm(),
    )


@bp.post("/settings/classes")
def add():
    form = AddForm()
    if form.validate_on_submit():
        row = catalog.add(form.name.data, services().settings.class_names, current_user, form.display.data)
        flash(
            f"Class {row.display} ({row.name}) added: doctors can label with it now; "
            "the next fine-tune grows the model.",
            "success",
        )
    else:
        flash("Give the new class a name.", "error")
    return redirect(url_for("classes.page"))


@bp.post("/settings/classes/rename")
def rename():
    form = RenameForm()
    if form.validate_on_submit():
        row = catalog.rename(form.old.data, form.new.data, services().settings.class_names, current_user)
        flash(
            f"Class {form.old.data} is now {row.display} ({row.name}); earlier labels keep their text and map to it.",
            "success",
        )
    else:
        flash("Give the class and its new name.", "error")
    return redirect(url_for("classes.page"))
