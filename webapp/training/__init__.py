"""Training page: running job, triggers, past runs."""
from flask import Blueprint, render_template

from webapp.auth import roles_required

bp = Blueprint("training", __name__)


@bp.get("/training")
@roles_required("engineer")
def page():
    return render_template("error.html", message="Training page coming.", status=200)
