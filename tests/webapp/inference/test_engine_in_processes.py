"""`medal score` scores through ONNX Runtime, or from stored trunk activations, with torch's
probabilities; each process runs with its own threads."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from learning.engine import ONNX_DIR, ONNX_FILE, OnnxNet, Threads
from learning.predict import score_pool
from tests.conftest import change_settings, registry_of, seed_pool
from webapp.cli import main
from webapp.config import load_settings
from webapp.extensions import db
from webapp.inference import scoring, threads
from webapp.models import Image, Prediction


@pytest.fixture(autouse=True)
def torch_threads():
    """Thread counts are process-wide: each test leaves them as it found them."""
    found = torch.get_num_threads()
    yield
    torch.set_num_threads(found)


def test_medal_score_stores_the_probabilities_torch_gives(app, tiny):
    ids = seed_pool(6)
    assert app.extensions["medal"].server.engine_for(1).kind == "onnxruntime"
    assert scoring.score(1)["images"] == 6
    store = app.extensions["medal"].store
    paths = [str(store.path(db.session.get(Image, image_id).path)) for image_id in ids]
    expected = score_pool(tiny.load(1), paths).probabilities  # torch
    for image_id, row in zip(ids, expected):
        stored = db.session.execute(db.select(Prediction).filter_by(image_id=image_id, model_version=1)).scalar_one()
        assert np.max(np.abs(np.array(list(stored.probabilities.values())) - row)) <= 1e-4


def test_scores_from_stored_activations_are_torch_s_and_a_rescore_computes_no_trunk(app, tiny):
    from webapp.training import recipe

    change_settings(app, {"inference": {"pool_scoring": "stored_activations"}})
    ids = seed_pool(6)
    assert scoring.score(1)["images"] == 6
    store = app.extensions["medal"].store
    paths = [str(store.path(db.session.get(Image, image_id).path)) for image_id in ids]
    expected = score_pool(tiny.load(1), paths).probabilities  # the whole network, in torch
    for image_id, row in zip(ids, expected):
        stored = db.session.execute(db.select(Prediction).filter_by(image_id=image_id, model_version=1)).scalar_one()
        # the trunk's activations are kept in float16: that rounding, no more
        assert np.max(np.abs(np.array(list(stored.probabilities.values())) - row)) <= 5e-3
    activations = recipe.activation_store(app.extensions["medal"].settings)
    files = sorted(activations.root.rglob("*.npy"))
    assert len(files) == 6
    written = [f.stat().st_mtime_ns for f in files]
    assert scoring.score(1)["images"] == 6  # the same trunk: every activation read back, none computed
    assert [f.stat().st_mtime_ns for f in sorted(activations.root.rglob("*.npy"))] == written


def test_web_and_worker_processes_take_their_own_configured_threads(app, tiny, monkeypatch):
    inter = torch.get_num_interop_threads()  # torch fixes it once per process: the subprocess test below sets it
    monkeypatch.setenv("MEDAL_INFERENCE__WEB", f"{{intra_op_threads: 1, inter_op_threads: {inter}}}")
    monkeypatch.setenv("MEDAL_INFERENCE__WORKER", f"{{intra_op_threads: 2, inter_op_threads: {inter}}}")
    settings = load_settings()
    graph = registry_of(app).model_dir(1) / ONNX_DIR / ONNX_FILE
    for role, intra in (("worker", 2), ("web", 1)):
        assert threads.apply(settings, role) == Threads(intra, inter)
        assert torch.get_num_threads() == intra
        options = OnnxNet(graph, tiny.load(1).spec).options  # a session opened now, as the model server does
        assert (options.intra_op_num_threads, options.inter_op_num_threads) == (intra, inter)


def test_a_medal_command_runs_with_the_worker_threads_and_medal_web_with_the_web_ones(home, monkeypatch):
    """`medal` sets the threads before its command runs (a fresh process also takes config's inter-op
    count: tests/learning/test_engine.py)."""
    inter = torch.get_num_interop_threads()
    monkeypatch.setenv("MEDAL_INFERENCE__WORKER", f"{{intra_op_threads: 2, inter_op_threads: {inter}}}")
    monkeypatch.setenv("MEDAL_INFERENCE__WEB", f"{{intra_op_threads: 1, inter_op_threads: {inter}}}")
    torch.set_num_threads(1)
    result = CliRunner().invoke(main, ["demo", "--logins"])
    assert result.exit_code == 0, result.output
    assert torch.get_num_threads() == 2  # the worker's
    result = CliRunner().invoke(main, ["web", "--port", "not-a-port"])  # refused before anything starts
    assert result.exit_code != 0 and "not-a-port" in result.output
    assert torch.get_num_threads() == 1  # the web's
