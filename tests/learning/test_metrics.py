"""Metrics against values worked out by hand."""

import numpy as np
import pytest

from learning.metrics import evaluate, expected_calibration_error, flat_metrics, metric_key

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
