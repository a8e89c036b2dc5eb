"""The local copy of a model version: downloaded once, and never cached empty or half-written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import mlflow
import pytest

from tests.conftest import registry_of


def _artifact_dir(registry, version: int) -> Path:
    source = registry.client.get_model_version(registry.model_name, str(version)).source
    run_id = source.split("/")[1] if source.startswith("runs:/") else None
    uri = registry.client.get_run(run_id).info.artifact_uri if run_id else source
    return Path(uri.removeprefix("file://"))


def test_a_version_whose_files_are_missing_is_not_cached_and_loads_once_they_are_back(app, tiny):
    registry = registry_of(app)
    artifacts = _artifact_dir(registry, 2)
    kept = artifacts.with_name(artifacts.name + "-kept")
    shutil.move(artifacts, kept)
    with pytest.raises((OSError, mlflow.exceptions.MlflowException)):
        registry.load(2)
    leftovers = [p.name for p in registry.cache_dir.iterdir()] if registry.cache_dir.exists() else []
    assert "2" not in leftovers and not [n for n in leftovers if n.startswith(".2-")]
    shutil.move(kept, artifacts)
    assert registry.load(2) is not None
    assert (registry.cache_dir / "2" / "spec.json").exists()


def test_an_empty_folder_left_in_the_cache_is_replaced(app, tiny):
    registry = registry_of(app)
    (registry.cache_dir / "3").mkdir(parents=True)
    assert registry.load(3) is not None
    assert (registry.cache_dir / "3" / "spec.json").exists()


def test_loading_a_version_leaves_mlflow_s_process_wide_uris_as_they_were(app, tiny):
    """A registry passes its store to its own client: loading never points MLflow's process-wide tracking
    or registry URI (which every other registry in the process, and a restored home, would then read) at it."""
    registry = registry_of(app)
    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri(), os.environ.get("MLFLOW_TRACKING_URI"))
    assert not (registry.cache_dir / "2").exists()
    assert registry.load(2) is not None
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri(), os.environ.get("MLFLOW_TRACKING_URI")) == before
    assert mlflow.get_tracking_uri() != registry.tracking_uri
