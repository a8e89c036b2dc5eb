"""Routes of the reports blueprint (dashboard_views)."""

from webapp.reports import bp  # noqa: F401
