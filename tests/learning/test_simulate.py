"""The offline active-learning loop on tiny synthetic data."""

import csv
import json

import numpy as np
import pytest

from learning.simulate import SimulationSpec, labels_to_reach, simulate
from tests import synthetic


def tiny_npz(path, train=60, val=16, test=16):
    arrays = {}
    for part, n, seed in (("train", train, 1), ("val", val, 2), ("test", test, 3)):
        images, labels = synthetic.dataset(n, size=28, seed=seed)
        arrays[f"{part}_images"] = np.stack(images)
        arrays[f"{part}_labels"] = np.array(labels).reshape(-1, 1)
    np.savez(path, **arrays)
    return path


def test_simulation_writes_curves_for_each_strategy_and_seed(tmp_path):
    spec = SimulationSpec(
        data=tiny_npz(tmp_path / "tiny.npz"),
        class_names=synthetic.CLASSES,
        strategies=["random", "margin"],
        seeds=[0, 1],
        rounds=2,
        batch=6,
        seed_size=8,
        epochs=1,
        backbone="small_cnn",
        size=32,
        batch_size=16,
        min_epoch_samples=16,
    )
    progress = tmp_path / "progress.log"
    result = simulate(spec, tmp_path / "out", report=lambda row: None, reference_epochs=1, progress=progress)
    with (tmp_path / "out" / "learning_curves.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 2 * 3
    assert [(r["strategy"], r["seed"], int(r["n_labels"])) for r in rows[:3]] == [
        ("random", "0", 8),
        ("random", "0", 14),
        ("random", "0", 20),
    ]
    assert all(0.0 <= float(r["test_accuracy"]) <= 1.0 and 0.0 <= float(r["test_auc"]) <= 1.0 for r in rows)
    assert (tmp_path / "out" / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert result["reference"]["labels"] == 60 and result["pool"] == 60
    logged = [json.loads(line) for line in progress.read_text().splitlines()]
    assert logged[0]["reference"]["labels"] == 60 and len(logged) == 1 + 12
    assert labels_to_reach(result["rows"], "random", -1.0) == 8
    assert labels_to_reach(result["rows"], "random", 2.0) is None


@pytest.mark.slow  # spawning two Python processes that import torch takes most of a minute here
def test_curves_in_parallel_processes_match_the_layout(tmp_path):
    spec = SimulationSpec(
        data=tiny_npz(tmp_path / "tiny.npz"),
        class_names=synthetic.CLASSES,
        strategies=["least_confidence"],
        seeds=[0, 1],
        rounds=1,
        batch=5,
        seed_size=8,
        pool_size=40,
        epochs=1,
        backbone="small_cnn",
        size=32,
        batch_size=16,
        min_epoch_samples=16,
    )
    result = simulate(spec, tmp_path / "out", report=lambda row: None, jobs=2)
    assert sorted((r["seed"], r["n_labels"]) for r in result["rows"]) == [(0, 8), (0, 13), (1, 8), (1, 13)]
    assert result["pool"] == 40 and result["reference"] is None
