"""Routes of the reports blueprint (drift_views)."""

from webapp.reports import bp  # noqa: F401
