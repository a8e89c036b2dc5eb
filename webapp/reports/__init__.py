"""What doctors, patients and engineers read: study reports (HTML/PDF), the model dashboard, the trust
meter, labelling activity and drift. One blueprint; each area keeps its routes in its own module."""

from flask import Blueprint

bp = Blueprint("reports", __name__, template_folder="templates")

from webapp.reports import activity_views, dashboard_views, drift_views, study_views, trust_views  # noqa: E402,F401
