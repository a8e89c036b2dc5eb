"""Every chart medal draws titles both its axes, so a reader never guesses what a number measures."""

from webapp import charts


def test_every_chart_titles_both_axes():
    drawn = {
        "line": charts.line_chart({"accuracy": [(1, 0.7), (2, 0.8)]}, xlabel="Model version", ylabel="Accuracy"),
        "roc": charts.roc_chart({"v1": ([0, 0.2, 1], [0, 0.8, 1])}),
        "reliability": charts.reliability_chart({"v1": ([0.3, 0.8], [0.25, 0.85])}),
        "confusion": charts.confusion_chart([[3, 1], [0, 4]], ["Normal", "Pneumonia"]),
        "bars": charts.grouped_bars(
            ["Normal"], {"v1": [0.8]}, {"v1": [(0.7, 0.9)]}, xlabel="Class", ylabel="Sensitivity"
        ),
        "activity": charts.stacked_bars({"2024-05-01": {"doctor": 3}}, ["2024-05-01"]),
    }
    axes = {
        "line": ("Model version", "Accuracy"),
        "roc": ("False positive rate", "True positive rate (sensitivity)"),
        "reliability": ("Predicted probability", "Observed frequency"),
        "confusion": ("Predicted class", "True class (gold)"),
        "bars": ("Class", "Sensitivity"),
        "activity": ("Day", "Labels"),
    }
    for name, (x, y) in axes.items():
        assert x in drawn[name] and y in drawn[name], name


def test_a_bar_without_a_value_is_left_out_rather_than_drawn_as_zero():
    both = charts.grouped_bars(["a", "b"], {"v1": [0.5, 0.6]}, xlabel="Class", ylabel="Sensitivity")
    one = charts.grouped_bars(["a", "b"], {"v1": [0.5, None]}, xlabel="Class", ylabel="Sensitivity")
    assert both.count('id="patch_') == one.count('id="patch_') + 1
