"""The Drift page: each site, age band and sex against the champion's training data (webapp/reports/drift.py)."""

from __future__ import annotations

from flask import render_template

from webapp.reports import bp, drift


def histogram_points(shares: list[float], width: int = 160, height: int = 36) -> str:
    """SVG polyline points of a histogram's shares, scaled so the tallest bin touches the top."""
    if not shares:
        return ""
    top = max(shares) or 1.0
    step = width / max(1, len(shares) - 1)
    return " ".join(f"{i * step:.1f},{height - share / top * (height - 2):.1f}" for i, share in enumerate(shares))


@bp.get("/drift")
def drift_page():
    found = drift.report()
    return render_template("reports/drift.html", report=found, points=histogram_points, dimensions=drift.DIMENSIONS)
