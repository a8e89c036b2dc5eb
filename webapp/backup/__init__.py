"""Backups: a consistent copy of the app database, the image store and the MLflow store, and restoring it."""
