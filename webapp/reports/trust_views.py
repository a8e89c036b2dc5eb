"""Routes of the reports blueprint (trust_views)."""

from webapp.reports import bp  # noqa: F401
