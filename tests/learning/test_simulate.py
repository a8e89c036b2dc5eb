"""The offline active-learning loop on tiny synthetic data."""
import csv

import numpy as np

from learning.simulate import SimulationSpec, labels_to_reach, simulate
from tests import synthetic


def test_simulation_writes_curves_for_each_strategy_and_seed(tmp_path):
    arrays = {}
    for part, n, seed in (("train", 60, 1), ("val", 16, 2), ("test", 16, 3)):
        images, labels = synthetic.dataset(n, size=28, seed=seed)
        arrays[f"{part}_images"] = np.stack(images)
        arrays[f"{part}_labels"] = np.array(labels).reshape(-1, 1)
    np.savez(tmp_path / "tiny.npz", **arrays)
    spec = SimulationSpec(data=tmp_path / "tiny.npz", class_names=synthetic.CLASSES,
                          strategies=["random", "margin"], seeds=[0, 1], rounds=2, batch=6, seed_size=8,
                          epochs=1, backbone="small_cnn", size=28, batch_size=16)
    result = simulate(spec, tmp_path / "out", report=lambda row: None, reference_epochs=1)
    with (tmp_path / "out" / "learning_curves.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 2 * 3
    assert [int(r["n_labels"]) for r in rows[:3]] == [8, 14, 20]
    assert all(0.0 <= float(r["test_accuracy"]) <= 1.0 for r in rows)
    assert (tmp_path / "out" / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert result["reference"]["labels"] == 60
    assert labels_to_reach(result["rows"], "random", -1.0) == 8
    assert labels_to_reach(result["rows"], "random", 2.0) is None
