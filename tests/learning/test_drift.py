"""Drift statistics against known distributions."""

from __future__ import annotations

import numpy as np
import pytest

from learning import drift

POLICY = drift.DriftPolicy(psi_alert=0.25, p_value=0.01, min_images=30)


def test_psi_of_identical_shares_is_zero_and_of_shifted_shares_large():
    shares = np.full(16, 1 / 16)
    assert drift.psi(shares, shares) == pytest.approx(0.0, abs=1e-12)
    shifted = np.r_[np.zeros(8), np.full(8, 1 / 8)]
    assert drift.psi(shares, shifted) > 2.0


def test_psi_matches_a_hand_computed_case():
    expected, actual = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    by_hand = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.75 - 0.5) * np.log(0.75 / 0.5)
    assert drift.psi(expected, actual) == pytest.approx(by_hand)


def test_intensity_histogram_bins_pixels_into_shares():
    pixels = np.array([[0, 15], [16, 255]], dtype=np.uint8)
    histogram = drift.intensity_histogram(pixels, bins=16)
    assert histogram.sum() == pytest.approx(1.0)
    assert histogram[0] == 0.5 and histogram[1] == 0.25 and histogram[15] == 0.25


def test_holm_adjusts_in_input_order_and_stays_monotone():
    assert drift.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert drift.holm([]) == []
    assert drift.holm([0.4, 0.3]) == pytest.approx([0.6, 0.6])


def _sample(rng, n, brightness=0.0, width=32, pc_shift=0.0, classes=("normal", "pneumonia")):
    base = np.linspace(-2, 2, 16)
    histograms = []
    for _ in range(n):
        weights = np.exp(-((base - brightness - rng.normal(0, 0.2)) ** 2))
        histograms.append(weights / weights.sum())
    return drift.Sample(
        np.asarray(histograms),
        np.full(n, float(width)) + rng.integers(0, 3, n),
        np.full(n, 32.0) + rng.integers(0, 3, n),
        rng.normal(pc_shift, 1.0, (n, 4)),
        [classes[i % len(classes)] for i in range(n)],
        rng.uniform(0.5, 1.0, n),
    )


def test_a_sample_from_the_reference_distribution_is_not_drifting():
    rng = np.random.default_rng(0)
    reference, same = _sample(rng, 400), _sample(rng, 60)
    checks = drift.compare(reference, same, POLICY)
    assert not [check.feature for check in checks if check.drifting]
    assert checks[0].test == "psi" and checks[0].value < 0.05


def test_brighter_images_shifted_embeddings_and_other_sizes_are_drifting():
    rng = np.random.default_rng(1)
    reference = _sample(rng, 400)
    flagged = {
        check.feature
        for check in drift.compare(reference, _sample(rng, 40, brightness=1.5, width=64, pc_shift=2.0), POLICY)
        if check.drifting
    }
    assert {"intensity_histogram", "mean_intensity", "width", "embedding_pc1"} <= flagged
    assert "height" not in flagged and "confidence" not in flagged


def test_predicted_class_shares_drift_when_one_class_dominates():
    rng = np.random.default_rng(2)
    reference = _sample(rng, 400)
    skewed = _sample(rng, 50, classes=("pneumonia",) * 9 + ("normal",))
    check = next(c for c in drift.compare(reference, skewed, POLICY) if c.feature == "predicted_class")
    assert check.test == "chi2_contingency" and check.drifting


def test_agreement_drifts_only_when_lower_and_counts_suffice():
    low = drift.agreement_test(15, 40, 180, 200, POLICY)
    assert low.drifting and low.test == "fisher_exact"
    assert not drift.agreement_test(40, 40, 150, 200, POLICY).drifting  # higher agreement is no drift
    few = drift.agreement_test(1, 10, 180, 200, POLICY)
    assert not few.drifting and few.note == "too few reviewed images"


def test_projection_round_trips_and_centres_the_reference():
    rng = np.random.default_rng(3)
    embeddings = rng.normal(size=(50, 12)) * np.arange(1, 13)
    projection = drift.Projection.fit(embeddings, 4)
    projected = projection.apply(embeddings)
    assert projected.shape == (50, 4)
    assert np.abs(projected.mean(axis=0)).max() < 1e-9
    again = drift.Projection.from_dict(projection.to_dict())
    assert np.allclose(again.apply(embeddings), projected)


def test_age_bands():
    bands = [(0, 5), (6, 17), (18, 64), (65, None)]
    assert [drift.age_band(a, bands) for a in (0, 5, 6, 30, 65, 101, None)] == [
        "0-5",
        "0-5",
        "6-17",
        "18-64",
        "65+",
        "65+",
        "unknown",
    ]
