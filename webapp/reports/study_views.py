"""Routes of the reports blueprint (study_views)."""

from webapp.reports import bp  # noqa: F401
