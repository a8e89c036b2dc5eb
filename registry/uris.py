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


def artifact_root_for(home: str) -> str:
    return f"file://{home}/mlartifacts"
