"""Log training runs, register model versions and load them back from MLflow.

MLflow loads with a registry's first call, not with this module: every `medal` command builds the
app, which makes a Registry, and most commands never reach MLflow (about 2 s of each start)."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from learning.engine import ONNX_DIR, ONNX_FILE, export_onnx
from learning.model import WEIGHTS_FILE, XrayNet, load_model, save_model
from registry.uris import ALIASES, EXPERIMENT, MODEL_ARTIFACT

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)
MANIFEST_FILE = "training_manifest.json"  # each run's training images, an artefact beside the model


@dataclass(frozen=True)
class VersionInfo:
    version: int
    aliases: list[str]
    tags: dict[str, str]
    run_id: str | None
    created_ms: int
    description: str = ""


@dataclass
class RunRecord:
    """What a training run logs: the caller gathers it, the registry writes it."""

    params: dict
    metrics_by_epoch: list[dict] = field(default_factory=list)
    final_metrics: dict = field(default_factory=dict)
    manifest: list[dict] = field(default_factory=list)  # label ids / image hashes trained on
    tags: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)  # file name -> matplotlib Figure


class Registry:
    """One MLflow tracking store and one registered model."""

    _lock = threading.Lock()

    def __init__(self, tracking_uri: str, model_name: str, artifact_root: str | None, cache_dir: str | Path):
        self.tracking_uri, self.model_name = tracking_uri, model_name
        self.artifact_root = artifact_root
        self.cache_dir = Path(cache_dir)

    @cached_property
    def client(self) -> MlflowClient:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    # --- runs -------------------------------------------------------------------------------
    def experiment_id(self) -> str:
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return self.client.create_experiment(EXPERIMENT, artifact_location=self.artifact_root)
        except _mlflow_error():  # another process created it first
            created = self.client.get_experiment_by_name(EXPERIMENT)
            if created is None:
                raise
            return created.experiment_id

    def log_run(self, net: XrayNet, record: RunRecord, run_name: str) -> str:
        """Log params, metrics, manifest and the model's weights; returns the run id."""
        run = self.client.create_run(self.experiment_id(), run_name=run_name, tags=_str_dict(record.tags))
        run_id = run.info.run_id
        try:
            for key, value in record.params.items():
                self.client.log_param(run_id, key, str(value)[:6000])
            for row in record.metrics_by_epoch:
                step = int(row.get("epoch", 0))
                for key, value in row.items():
                    if key != "epoch" and _is_number(value):
                        self.client.log_metric(run_id, key, float(value), step=step)
            for key, value in record.final_metrics.items():
                if _is_number(value):
                    self.client.log_metric(run_id, key, float(value))
            with tempfile.TemporaryDirectory() as tmp:
                model_dir = save_model(net, Path(tmp) / MODEL_ARTIFACT)
                self.client.log_artifacts(run_id, str(model_dir), MODEL_ARTIFACT)
                manifest = Path(tmp) / MANIFEST_FILE
                manifest.write_text(json.dumps(record.manifest, indent=1))
                self.client.log_artifact(run_id, str(manifest))
                for name, figure in record.figures.items():
                    self.client.log_figure(run_id, figure, name)
            self.client.set_terminated(run_id, "FINISHED")
        except Exception:
            self.client.set_terminated(run_id, "FAILED")
            raise
        return run_id

    def register(self, run_id: str, tags: dict | None = None) -> int:
        source = f"{self.client.get_run(run_id).info.artifact_uri}/{MODEL_ARTIFACT}"
        self._export_onnx(run_id)
        with self._lock:
            try:
                self.client.create_registered_model(self.model_name)
            except _mlflow_error():
                pass  # already registered
            version = self.client.create_model_version(
                self.model_name, source, run_id=run_id, tags=_str_dict(tags or {})
            )
        return int(version.version)

    def _export_onnx(self, run_id: str) -> None:
        """The run's network as an ONNX graph beside its weights (model/onnx/model.onnx), checked
        against torch, so serving and scoring run it in ONNX Runtime. A failure is logged and the
        version is registered all the same: torch serves it."""
        found = {Path(item.path).name for item in self.client.list_artifacts(run_id, MODEL_ARTIFACT)}
        if WEIGHTS_FILE not in found or ONNX_DIR in found:
            return  # not an image network (the clinical model), or exported already
        try:
            with tempfile.TemporaryDirectory() as tmp:
                local = self.client.download_artifacts(run_id, MODEL_ARTIFACT, tmp)
                graph = export_onnx(load_model(local), Path(tmp) / ONNX_DIR / ONNX_FILE)
                self.client.log_artifact(run_id, str(graph), f"{MODEL_ARTIFACT}/{ONNX_DIR}")
        except Exception:
            log.exception("run %s could not be exported to ONNX; torch will serve its version", run_id)

    # --- versions and aliases -----------------------------------------------------------------
    def version_for(self, alias: str) -> int | None:
        try:
            return int(self.client.get_model_version_by_alias(self.model_name, alias).version)
        except _mlflow_error():
            return None

    def aliases(self) -> dict[str, int]:
        try:
            model = self.client.get_registered_model(self.model_name)
        except _mlflow_error():
            return {}
        return {alias: int(version) for alias, version in (model.aliases or {}).items() if alias in ALIASES}

    def set_alias(self, alias: str, version: int) -> None:
        self.client.set_registered_model_alias(self.model_name, alias, str(version))

    def clear_alias(self, alias: str) -> None:
        try:
            self.client.delete_registered_model_alias(self.model_name, alias)
        except _mlflow_error():
            pass  # nothing to clear

    def set_tags(self, version: int, tags: dict) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, str(version), key, str(value))

    def versions(self) -> list[VersionInfo]:
        try:
            found = self.client.search_model_versions(f"name = '{self.model_name}'")
        except _mlflow_error():
            return []
        by_version: dict[int, list[str]] = {}
        for alias, version in self.aliases().items():
            by_version.setdefault(version, []).append(alias)
        infos = [
            VersionInfo(
                int(v.version),
                sorted(by_version.get(int(v.version), [])),
                dict(v.tags or {}),
                v.run_id,
                int(v.creation_timestamp or 0),
                v.description or "",
            )
            for v in found
        ]
        return sorted(infos, key=lambda info: info.version, reverse=True)

    def run_id_of(self, version: int) -> str:
        run_id = self.client.get_model_version(self.model_name, str(version)).run_id
        if run_id is None:
            raise _mlflow_error()(f"Model version {version} has no run.")
        return run_id

    def log_version_figure(self, version: int, figure, name: str) -> None:
        self.client.log_figure(self.run_id_of(version), figure, name)

    def log_version_metrics(self, version: int, metrics: dict, prefix: str) -> None:
        run_id = self.run_id_of(version)
        for key, value in metrics.items():
            if _is_number(value):
                self.client.log_metric(run_id, f"{prefix}{key}", float(value))

    def version_metrics(self, version: int, prefix: str = "") -> dict[str, float]:
        """The latest value of each metric logged on the version's run, prefix stripped."""
        try:
            run_id = self.run_id_of(version)
        except _mlflow_error():
            return {}
        metrics = self.client.get_run(run_id).data.metrics
        return {key[len(prefix) :]: value for key, value in metrics.items() if key.startswith(prefix)}

    def training_manifest(self, version: int) -> list[dict] | None:
        """What the version's run trained on (RunRecord.manifest), or None when the run logged none."""
        try:
            run_id = self.run_id_of(version)
            with tempfile.TemporaryDirectory() as tmp:
                local = self.client.download_artifacts(run_id, MANIFEST_FILE, tmp)
                return json.loads(Path(local).read_text())
        except (_mlflow_error(), OSError, ValueError):
            return None

    # --- loading ------------------------------------------------------------------------------
    def model_dir(self, version: int) -> Path:
        """The version's files, downloaded once into the cache (versions never change)."""
        target = self.cache_dir / str(version)
        if (target / "spec.json").exists():
            return target
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.cache_dir, prefix=f".{version}-"))
        try:
            # the version's source through this registry's client: MLflow's own models:/ resolver reads the
            # process-wide registry URI, and setting that would point every other Registry here too
            source = self.client.get_model_version_download_uri(self.model_name, str(version))
            from mlflow.artifacts import download_artifacts

            local = Path(download_artifacts(artifact_uri=source, dst_path=str(staging), tracking_uri=self.tracking_uri))
            if not (local / "spec.json").exists():  # never cache an empty or partial copy
                raise FileNotFoundError(f"model version {version} has no spec.json in the registry's artifacts")
            if target.exists() and not (target / "spec.json").exists():
                shutil.rmtree(target, ignore_errors=True)  # an unusable copy left by an older release
            try:
                local.rename(target)  # atomic: readers never see a half-written version
            except OSError:
                if not (target / "spec.json").exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def load(self, version: int) -> XrayNet:
        return load_model(self.model_dir(version))


def _mlflow_error() -> type[Exception]:
    """MLflow's exception class; an `except` clause evaluates it only when something was raised,
    by which time the registry's client has loaded MLflow."""
    from mlflow.exceptions import MlflowException

    return MlflowException


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _str_dict(values: dict) -> dict[str, str]:
    return {str(k): str(v) for k, v in values.items()}
