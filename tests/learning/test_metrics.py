"""Metrics against values worked out by hand."""

import numpy as np
import pytest

from learning.metrics import (
    evaluate,
    expected_calibration_error,
    flat_metrics,
    metric_key,
    reliability_curve,
    roc_curves,
)

NAMES = ["normal", "pneumonia"]


def test_confusion_sensitivity_specificity_by_hand():
    y = np.array([0, 0, 1, 1])
    p = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    report = evaluate(y, p, NAMES)
    assert report.confusion == [[1, 1], [0, 2]]
    assert report.accuracy == 0.75
    assert report.per_class["normal"].sensitivity == 0.5
    assert report.per_class["normal"].specificity == 1.0
    assert report.per_class["pneumonia"].precision == pytest.approx(2 / 3)
    assert report.macro_auc == 1.0  # every pneumonia scores above every normal
    # bins: 0.9 right, 0.6 wrong, 0.8 right, 0.7 right -> (0.1 + 0.6 + 0.2 + 0.3) / 4
    assert report.ece == pytest.approx(0.3)


def test_perfect_confident_classifier():
    y = np.array([0, 1] * 10)
    p = np.eye(2)[y] * 0.999 + 0.0005
    report = evaluate(y, p, NAMES)
    assert report.accuracy == 1.0 and report.macro_auc == 1.0 and report.ece < 0.01


def test_missing_class_gives_no_auc_and_a_note():
    report = evaluate(np.array([1, 1]), np.array([[0.2, 0.8], [0.4, 0.6]]), NAMES)
    assert report.macro_auc is None and "normal" in report.notes[0]
    assert "macro_auc" not in flat_metrics(report)


def test_flat_keys_for_mlflow():
    flat = flat_metrics(evaluate(np.array([0, 1]), np.array([[0.7, 0.3], [0.2, 0.8]]), NAMES))
    assert {"accuracy", "macro_auc", "ece", "sensitivity_pneumonia", "specificity_normal", "f1_normal"} <= set(flat)


def test_one_spelling_of_per_class_keys_even_with_spaces_in_class_names():
    names = ["normal", "viral pneumonia"]
    report = evaluate(np.array([0, 1]), np.array([[0.7, 0.3], [0.2, 0.8]]), names)
    assert metric_key("sensitivity", "viral pneumonia") == "sensitivity_viral_pneumonia"
    assert flat_metrics(report) == flat_metrics(report.to_dict())  # the gate's dict, the same keys
    assert "sensitivity_viral_pneumonia" in flat_metrics(report)


def test_ece_of_overconfident_wrong_model_is_large():
    y = np.array([0] * 10)
    p = np.tile([0.05, 0.95], (10, 1))
    assert expected_calibration_error(y, p) == pytest.approx(0.95)


def test_no_examples_is_a_report_not_a_crash():
    report = evaluate(np.zeros(0), np.zeros((0, 2)), NAMES)
    assert report.n == 0 and report.macro_auc is None and report.notes


# three classes, six gold images; every number below is worked out by hand from this table
#   true  probabilities        predicted  right  top confidence
#   0     (0.80, 0.10, 0.10)   0          yes    0.8
#   0     (0.30, 0.60, 0.10)   1          no     0.6
#   1     (0.20, 0.70, 0.10)   1          yes    0.7
#   1     (0.10, 0.20, 0.70)   2          no     0.7
#   2     (0.10, 0.10, 0.80)   2          yes    0.8
#   2     (0.05, 0.05, 0.90)   2          yes    0.9
THREE = ["normal", "bacterial", "viral"]
Y3 = np.array([0, 0, 1, 1, 2, 2])
P3 = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.1, 0.1, 0.8], [0.05, 0.05, 0.9]])


def test_three_classes_per_class_metrics_by_hand():
    report = evaluate(Y3, P3, THREE)
    assert report.confusion == [[1, 1, 0], [0, 1, 1], [0, 0, 2]]
    assert report.accuracy == pytest.approx(4 / 6)
    normal, bacterial, viral = (report.per_class[name] for name in THREE)
    # normal: tp 1, fn 1, fp 0, tn 4
    assert (normal.sensitivity, normal.specificity, normal.precision) == (0.5, 1.0, 1.0)
    assert normal.f1 == pytest.approx(2 / 3)  # 2 * 1 * 0.5 / 1.5
    # bacterial: tp 1, fn 1, fp 1, tn 3
    assert (bacterial.sensitivity, bacterial.specificity, bacterial.precision, bacterial.f1) == (0.5, 0.75, 0.5, 0.5)
    # viral: tp 2, fn 0, fp 1, tn 3
    assert (viral.sensitivity, viral.specificity) == (1.0, 0.75)
    assert viral.precision == pytest.approx(2 / 3) and viral.f1 == pytest.approx(0.8)
    assert [report.per_class[n].support for n in THREE] == [2, 2, 2]


def test_three_classes_auc_and_ece_by_hand():
    report = evaluate(Y3, P3, THREE)
    # one against the rest: normal and viral separate perfectly; bacterial's 0.2 loses to normal's 0.6: 7 of 8 pairs
    assert report.macro_auc == pytest.approx((1 + 7 / 8 + 1) / 3)
    # bins: 0.6 (0 right of 1), 0.7 (1 of 2), 0.8 (2 of 2), 0.9 (1 of 1)
    # ECE = (1 * 0.6 + 2 * 0.2 + 2 * 0.2 + 1 * 0.1) / 6 = 0.25
    assert report.ece == pytest.approx(0.25, abs=1e-6)


def test_roc_curves_one_against_the_rest():
    curves = roc_curves(Y3, P3, THREE)
    assert set(curves) == set(THREE)
    assert curves["bacterial"].auc == pytest.approx(7 / 8)
    assert curves["normal"].auc == 1.0 and curves["viral"].auc == 1.0
    bacterial = curves["bacterial"]
    assert (bacterial.false_positive_rate[0], bacterial.true_positive_rate[0]) == (0.0, 0.0)
    assert (bacterial.false_positive_rate[-1], bacterial.true_positive_rate[-1]) == (1.0, 1.0)
    # at threshold 0.6 one of four negatives is above it and one of two positives: (0.25, 0.5) lies on the curve
    points = set(zip(bacterial.false_positive_rate, bacterial.true_positive_rate))
    assert (0.25, 0.5) in points and (0.0, 0.5) in points


def test_roc_curves_skip_a_class_without_positives():
    curves = roc_curves(np.array([1, 1, 0]), np.array([[0.1, 0.8, 0.1], [0.3, 0.6, 0.1], [0.7, 0.2, 0.1]]), THREE)
    assert set(curves) == {"normal", "bacterial"}


def test_reliability_curve_by_hand():
    curve = reliability_curve(Y3, P3)
    assert curve.mean_confidence == pytest.approx([0.6, 0.7, 0.8, 0.9])
    assert curve.accuracy == pytest.approx([0.0, 0.5, 1.0, 1.0])
    assert curve.counts == [1, 2, 2, 1]
    assert curve.ece == pytest.approx(0.25, abs=1e-6)
    assert reliability_curve(np.zeros(0), np.zeros((0, 3))).counts == []
