"""The gate on hand-made metric dicts: each rule can fail alone."""
import pytest

from registry.gate import GatePolicy, auto_promotion_allowed, check

POLICY = GatePolicy(min_gold_size=20, min_sensitivity={"normal": 0.8, "pneumonia": 0.85},
                    max_drop={"accuracy": 0.02, "macro_auc": 0.01, "sensitivity": 0.03, "ece": 0.03})


def report(accuracy=0.9, auc=0.95, ece=0.05, sens=(0.9, 0.9)):
    return {"accuracy": accuracy, "macro_auc": auc, "ece": ece,
            "per_class": {"normal": {"sensitivity": sens[0], "specificity": 0.9, "precision": 0.9, "f1": 0.9},
                          "pneumonia": {"sensitivity": sens[1], "specificity": 0.9, "precision": 0.9, "f1": 0.9}}}


def test_equal_models_pass():
    result = check(report(), report(), POLICY, gold_size=50)
    assert result.passed and result.failures == []


@pytest.mark.parametrize("candidate, champion, gold_size, rule, metric", [
    (report(), report(), 10, "gold_size", "n"),
    (report(sens=(0.7, 0.9)), report(sens=(0.71, 0.9)), 50, "min_sensitivity", "sensitivity_normal"),
    (report(accuracy=0.87), report(), 50, "max_drop", "accuracy"),
    (report(auc=0.93), report(), 50, "max_drop", "macro_auc"),
    (report(ece=0.09), report(), 50, "max_drop", "ece"),
    (report(sens=(0.86, 0.9)), report(), 50, "max_drop", "sensitivity_normal"),  # above the floor, dropped 0.04
])
def test_each_rule_fails_alone(candidate, champion, gold_size, rule, metric):
    result = check(candidate, champion, POLICY, gold_size)
    assert not result.passed
    failed = [c for c in result.checks if not c.passed]
    assert [(c.rule, c.metric) for c in failed] == [(rule, metric)]
    assert len(result.failures) == 1 and result.failures[0]


def test_first_model_only_meets_absolute_rules():
    assert check(report(accuracy=0.5, auc=0.6), None, POLICY, 50).passed
    assert not check(report(sens=(0.9, 0.5)), None, POLICY, 50).passed


def test_policy_from_config():
    policy = GatePolicy.from_config({"min_gold_size": 5, "min_sensitivity": {"normal": 0.7},
                                     "max_drop": {"accuracy": 0.1}})
    assert policy == GatePolicy(5, {"normal": 0.7}, {"accuracy": 0.1})


def test_result_is_json_ready():
    data = check(report(accuracy=0.5), report(), POLICY, 50).to_dict()
    assert data["passed"] is False and data["failures"] and data["checks"][0]["rule"] == "gold_size"


def test_auto_promotion_rules():
    auto = {"enabled": True, "min_margin": 0.01, "min_agreement": 0.9}
    passed = check(report(auc=0.97), report(auc=0.95), POLICY, 50).passed
    assert auto_promotion_allowed(passed, report(auc=0.97), report(auc=0.95), auto, 0.95)[0]
    assert not auto_promotion_allowed(passed, report(auc=0.97), report(auc=0.95), {**auto, "enabled": False}, 0.95)[0]
    assert not auto_promotion_allowed(passed, report(auc=0.955), report(auc=0.95), auto, 0.95)[0]
    assert not auto_promotion_allowed(passed, report(auc=0.97), report(auc=0.95), auto, 0.5)[0]
    failed = check(report(accuracy=0.5), report(), POLICY, 50).passed
    assert not auto_promotion_allowed(failed, report(auc=0.99), report(), auto, 0.99)[0]
