"""Every registered version carries an ONNX graph beside its weights; a version without one is served by torch."""

import json
import tempfile
from pathlib import Path

import numpy as np

from learning.engine import ONNX_DIR, ONNX_FILE, PARITY_TOLERANCE, load_engine
from learning.model import ModelSpec, XrayNet, save_model
from registry.uris import MODEL_ARTIFACT
from tests import synthetic
from tests.conftest import registry_of
from webapp.inference.serving import ModelServer


def _films(count: int) -> np.ndarray:
    films = [synthetic.radiograph(i % 2, size=32, seed=i) for i in range(count)]
    return np.stack(films)[:, None].astype(np.float32) / 255.0


def test_a_registered_version_has_an_onnx_graph_with_torch_probabilities(app, tiny):
    artifacts = [item.path for item in tiny.client.list_artifacts(tiny.run_id_of(2), f"{MODEL_ARTIFACT}/{ONNX_DIR}")]
    assert artifacts == [f"{MODEL_ARTIFACT}/{ONNX_DIR}/{ONNX_FILE}"]
    folder = tiny.model_dir(2)
    assert (folder / ONNX_DIR / ONNX_FILE).exists()  # downloaded with the weights
    engine = load_engine(folder)
    assert engine.kind == "onnxruntime"
    expected, _ = load_engine(folder, prefer="torch").run(_films(4))
    assert np.max(np.abs(engine.run(_films(4))[0] - expected)) <= PARITY_TOLERANCE


def test_the_champion_is_served_through_onnx_runtime_unless_config_says_torch(app, tiny):
    assert ModelServer(tiny, 0).current().engine.kind == "onnxruntime"
    assert ModelServer(tiny, 0, engine="torch").current().engine.kind == "torch"
    served = app.extensions["medal"].server.current()
    assert served.engine.kind == "onnxruntime" and served.net.spec == served.engine.spec  # torch kept for Grad-CAM


def test_a_version_registered_without_an_export_is_served_by_torch(app, tiny):
    """As versions registered before exports existed: the run's model folder has weights only."""
    registry = registry_of(app)
    net = XrayNet(ModelSpec("small_cnn", ["normal", "pneumonia"], 32), pretrained=False).eval()
    run_id = registry.client.create_run(registry.experiment_id()).info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        registry.client.log_artifacts(run_id, str(save_model(net, Path(tmp) / MODEL_ARTIFACT)), MODEL_ARTIFACT)
    source = f"{registry.client.get_run(run_id).info.artifact_uri}/{MODEL_ARTIFACT}"
    version = int(registry.client.create_model_version(registry.model_name, source, run_id=run_id).version)
    registry.set_alias("champion", version)
    served = ModelServer(registry, 0).current()
    assert served.version == version and served.engine.kind == "torch"
    probabilities, _ = served.engine.run(_films(3))
    assert np.allclose(probabilities.sum(axis=1), 1.0)


def test_a_run_without_image_weights_registers_without_an_export(app):
    """The image + clinical data model is registered through the same client: nothing to export."""
    registry = registry_of(app)
    run_id = registry.client.create_run(registry.experiment_id()).info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / MODEL_ARTIFACT
        folder.mkdir()
        (folder / "spec.json").write_text(json.dumps({"class_names": ["normal", "pneumonia"], "fields": []}))
        registry.client.log_artifacts(run_id, str(folder), MODEL_ARTIFACT)
    assert registry.register(run_id) == 1
    assert [Path(item.path).name for item in registry.client.list_artifacts(run_id, MODEL_ARTIFACT)] == ["spec.json"]
