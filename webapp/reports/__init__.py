"""Study reports: what doctors and patients read about one study (HTML and PDF), its revisions and
amendments (study); the pages (study_views)."""

from flask import Blueprint

bp = Blueprint("reports", __name__, template_folder="templates")

from webapp.reports import study_views  # noqa: E402,F401
