"""With an MLflow tracking server, model files go through its artifact proxy, not a client's disk."""

from __future__ import annotations

from webapp.config import flask_config, load_settings


def _config(tmp_path, **environ) -> dict:
    environ = {"MEDAL_HOME": str(tmp_path), **environ}
    return flask_config(load_settings(environ=environ), environ)


def test_a_tracking_server_keeps_the_artifacts(tmp_path):
    # a file:// root here would make each web process and the worker write model files to its own
    # disk, which the other hosts of a deployment cannot read
    assert _config(tmp_path, MLFLOW_TRACKING_URI="http://mlflow.internal:5000")["MLFLOW_ARTIFACT_ROOT"] is None
    assert _config(tmp_path, MLFLOW_TRACKING_URI="https://mlflow.internal")["MLFLOW_ARTIFACT_ROOT"] is None


def test_the_embedded_store_keeps_artifacts_under_medal_home(tmp_path):
    assert _config(tmp_path)["MLFLOW_ARTIFACT_ROOT"] == f"file://{tmp_path}/mlartifacts"
    explicit = _config(tmp_path, MLFLOW_TRACKING_URI="http://m:5000", MLFLOW_ARTIFACT_ROOT="s3://bucket/medal")
    assert explicit["MLFLOW_ARTIFACT_ROOT"] == "s3://bucket/medal"
