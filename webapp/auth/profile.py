"""The profile page: every signed-in user sets how they sign study reports (full name, job title).
It edits the signed-in user only; no route takes another user's id."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField

from webapp.auth import signatures
from webapp.auth.views import bp
from webapp.errors import Problem
from webapp.extensions import db


class ProfileForm(FlaskForm):
    # lengths are checked by signatures.set_signature, the one check the CLI shares
    full_name = StringField("Full name, as it signs reports")
    job_title = StringField("Job title")


@bp.route("/profile", methods=["GET", "POST"])
def profile():
    form = ProfileForm(data={"full_name": current_user.full_name, "job_title": current_user.job_title})
    if not form.validate_on_submit():  # a GET (a POST without its CSRF token is refused before this)
        return render_template("auth/profile.html", form=form, signer=signatures.of(current_user))
    try:
        signer = signatures.set_signature(current_user, form.full_name.data, form.job_title.data)
    except Problem as problem:
        db.session.rollback()
        flash(str(problem), "error")
        return render_template("auth/profile.html", form=form, signer=signatures.of(current_user)), problem.status
    db.session.commit()
    flash(f"Saved: your reports are signed {signer}.", "success")
    return redirect(url_for("auth.profile"))
