"""The labelling activity page (engineers): webapp/reports/activity.py does the counting."""

from __future__ import annotations

from flask import render_template, request

from webapp.errors import Problem
from webapp.reports import activity, bp
from webapp.services import services


@bp.get("/activity")
def activity_page():
    raw = request.args.get("days", "").strip()
    days = services().settings.monitoring.activity_days
    if raw:
        if not raw.isdigit() or not 1 <= int(raw) <= 366:
            raise Problem("days must be a whole number from 1 to 366, e.g. ?days=30.")
        days = int(raw)
    return render_template("reports/activity.html", activity=activity.activity(days))
