"""Routes of the reports blueprint (activity_views)."""

from webapp.reports import bp  # noqa: F401
