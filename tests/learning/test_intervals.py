"""The paired bootstrap and McNemar's test: the same figures as evaluate(), intervals that are paired,
drawn by patient, seeded, and fast enough for a gate run."""

import statistics
import time

import numpy as np
import pytest

from learning.intervals import mcnemar_exact, paired_bootstrap, resample_counts, weighted_metrics
from learning.metrics import evaluate, flat_metrics


def probabilities(truth: np.ndarray, k: int, skill: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(truth), k))
    logits[np.arange(len(truth)), truth] += skill
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("k", [2, 4])
def test_the_point_values_are_evaluates_figures(k):
    names = ["normal", "bacterial", "viral", "covid19"][:k]
    truth = np.random.default_rng(k).integers(0, k, 120)
    mine, theirs = probabilities(truth, k, 1.0, 1), probabilities(truth, k, 1.5, 2)
    mine[:30] = np.round(mine[:30], 1)  # tied scores, and confidences on bin edges
    mine[:30] /= mine[:30].sum(axis=1, keepdims=True)
    found = paired_bootstrap(truth, mine, theirs, names, resamples=200)
    for side, scores in (("candidate", mine), ("champion", theirs)):
        for key, value in flat_metrics(evaluate(truth, scores, names)).items():
            if key != "n":
                assert getattr(found.metrics[key], side).value == pytest.approx(value, abs=1e-6), (side, key)
    difference = found.metrics["macro_auc"].difference
    assert difference.value == pytest.approx(
        found.metrics["macro_auc"].candidate.value - found.metrics["macro_auc"].champion.value
    )


def test_a_resample_is_the_gold_set_drawn_again_by_patient_with_its_duplicates():
    """Each resample's figures equal evaluate() on the films it drew, listed out: a patient drawn
    twice brings all their films twice."""
    names = ["normal", "bacterial", "viral"]
    truth = np.repeat([0, 1, 2], [14, 12, 10])
    scores = probabilities(truth, 3, 1.0, 5)
    scores[:8] = np.round(scores[:8], 1)  # ties
    scores[:8] /= scores[:8].sum(axis=1, keepdims=True)
    patients = np.arange(36) // 3  # three films a patient
    counts = resample_counts(patients, 15, seed=1)
    figures = weighted_metrics(truth, scores, counts, names)
    for row, drawn in enumerate(counts):
        assert all(len(set(drawn[patients == p])) == 1 for p in range(12))  # a patient's films come together
        films = np.repeat(np.arange(36), drawn.astype(int))
        again = flat_metrics(evaluate(truth[films], scores[films], names))
        for key in ("accuracy", "ece", "macro_auc", "sensitivity_viral", "specificity_normal", "f1_bacterial"):
            if key in again:
                assert figures[key][row] == pytest.approx(again[key], abs=1e-6), (row, key)
            else:
                assert np.isnan(figures[key][row])  # a class none of the drawn patients had


def test_mcnemar_exact_is_the_two_sided_binomial_test_on_the_films_that_differ():
    assert mcnemar_exact(5, 0) == pytest.approx(0.0625)  # five films to none: not yet evidence at 0.05
    assert mcnemar_exact(6, 0) == pytest.approx(0.03125)
    assert mcnemar_exact(2, 7) == mcnemar_exact(7, 2) == pytest.approx(0.1796875)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(3, 3) == 1.0


def test_the_difference_is_paired_narrower_than_the_two_intervals_side_by_side():
    truth = np.repeat([0, 1, 2], [65, 60, 45])
    theirs = probabilities(truth, 3, 1.2, 3)
    mine = theirs.copy()
    mine[[0, 1]] = mine[[0, 1]][:, [1, 0, 2]]  # two films called differently, nothing else changed
    found = paired_bootstrap(truth, mine, theirs, ["normal", "bacterial", "viral"])
    accuracy = found.metrics["accuracy"]
    assert accuracy.candidate.high - accuracy.candidate.low > 0.08  # 170 films: each model is known to ±0.05
    assert accuracy.difference.high - accuracy.difference.low < 0.03  # but they differ on two films only
    assert accuracy.discordant is not None and sum(accuracy.discordant) <= 2


def test_films_of_one_patient_are_drawn_together_and_widen_the_interval():
    """Five films per patient, all right or all wrong together: 30 witnesses, not 150."""
    truth = np.repeat([0, 1], 75)
    right = np.repeat(np.random.default_rng(4).random(30) < 0.8, 5)
    scores = np.where(right[:, None], np.eye(2)[truth] * 0.6 + 0.2, np.eye(2)[1 - truth] * 0.6 + 0.2)
    patients = [f"p{i // 5}" for i in range(150)]
    by_patient = paired_bootstrap(truth, scores, None, ["normal", "pneumonia"], patients)
    by_image = paired_bootstrap(truth, scores, None, ["normal", "pneumonia"])
    width = {
        found.unit: found.metrics["accuracy"].candidate.high - found.metrics["accuracy"].candidate.low
        for found in (by_patient, by_image)
    }
    assert (by_patient.patients, by_image.patients) == (30, 150)
    assert width["patient"] > 1.8 * width["image"]
    assert by_patient.metrics["sensitivity_normal"].patients == 15


def test_seeded_the_same_gold_set_gives_the_same_intervals():
    truth = np.repeat([0, 1, 2], 20)
    mine, theirs = probabilities(truth, 3, 1.0, 7), probabilities(truth, 3, 1.0, 8)
    first = paired_bootstrap(truth, mine, theirs, ["a", "b", "c"], seed=3).to_dict()
    assert paired_bootstrap(truth, mine, theirs, ["a", "b", "c"], seed=3).to_dict() == first
    assert paired_bootstrap(truth, mine, theirs, ["a", "b", "c"], seed=4).to_dict() != first


def test_a_class_missing_from_a_resample_leaves_its_figures_out_not_nan():
    truth = np.array([0] * 40 + [1] * 40 + [2])  # one viral film: many resamples have none
    found = paired_bootstrap(truth, probabilities(truth, 3, 1.0, 9), None, ["a", "b", "c"]).to_dict()
    viral = found["metrics"]["sensitivity_c"]["candidate"]
    assert viral["value"] in (0.0, 1.0) and viral["low"] is not None
    assert found["metrics"]["macro_auc"]["candidate"]["low"] is not None  # from the resamples that have all three
    assert "nan" not in str(found).lower()


def test_two_thousand_resamples_of_250_gold_images_take_well_under_two_seconds():
    names = ["normal", "bacterial", "viral", "covid19"]
    truth = np.random.default_rng(0).integers(0, 4, 250)
    mine, theirs = probabilities(truth, 4, 1.5, 1), probabilities(truth, 4, 1.2, 2)
    patients = [f"p{i // 2}" for i in range(250)]
    times = []
    for _ in range(3):
        start = time.perf_counter()
        paired_bootstrap(truth, mine, theirs, names, patients, resamples=2000)
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 2.0, times
