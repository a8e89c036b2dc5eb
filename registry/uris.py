"""The registered model's name, its aliases and URIs, in one place."""

from __future__ import annotations

CHAMPION = "champion"
CANDIDATE = "candidate"
PREVIOUS = "previous"
ALIASES = (CHAMPION, CANDIDATE, PREVIOUS)
MODEL_ARTIFACT = "model"
EXPERIMENT = "medal-training"


def model_uri(name: str, alias_or_version: str | int) -> str:
    if isinstance(alias_or_version, int) or str(alias_or_version).isdigit():
        return f"models:/{name}/{alias_or_version}"
    return f"models:/{name}@{alias_or_version}"


def tracking_uri_for(home: str) -> str:
    return f"sqlite:///{home}/mlruns.db"


def artifact_root_for(home: str, tracking_uri: str | None = None) -> str | None:
    """Where new experiments keep artifacts. A tracking server decides itself (None): with
    --serve-artifacts it proxies them to its store, so no client needs the server's disk."""
    if tracking_uri and tracking_uri.startswith(("http://", "https://")):
        return None
    return f"file://{home}/mlartifacts"
