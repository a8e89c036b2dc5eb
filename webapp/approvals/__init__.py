"""Approvals, gold set and history pages for engineers."""
from flask import Blueprint, render_template

from webapp.auth import roles_required

bp = Blueprint("approvals", __name__)


@bp.get("/approvals")
@roles_required("engineer")
def page():
    return render_template("error.html", message="Approvals page coming.", status=200)


@bp.get("/gold")
@roles_required("engineer")
def gold():
    return render_template("error.html", message="Gold set page coming.", status=200)


@bp.get("/history")
@roles_required("engineer")
def history():
    return render_template("error.html", message="History page coming.", status=200)
