"""Pages of the clinical-data area."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("clinical", __name__, template_folder="templates")
