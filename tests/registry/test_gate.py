"""The gate on hand-made metric dicts: each rule can fail alone."""

from dataclasses import replace

import pytest

from registry.gate import AutoPromotion, GatePolicy, auto_promotion_allowed, check

POLICY = GatePolicy(
    min_gold_size=20,
    min_sensitivity={"normal": 0.8, "pneumonia": 0.85},
    max_drop={"accuracy": 0.02, "macro_auc": 0.01, "sensitivity": 0.03, "ece": 0.03},
)


def report(accuracy=0.9, auc=0.95, ece=0.05, sens=(0.9, 0.9)):
    return {
        "accuracy": accuracy,
        "macro_auc": auc,
        "ece": ece,
        "per_class": {
            "normal": {"sensitivity": sens[0], "specificity": 0.9, "precision": 0.9, "f1": 0.9},
            "pneumonia": {"sensitivity": sens[1], "specificity": 0.9, "precision": 0.9, "f1": 0.9},
        },
    }


def test_equal_models_pass():
    result = check(report(), report(), POLICY, gold_size=50)
    assert result.passed and result.failures == []


@pytest.mark.parametrize(
    "candidate, champion, gold_size, rule, metric",
    [
        (report(), report(), 10, "gold_size", "n"),
        (report(sens=(0.7, 0.9)), report(sens=(0.71, 0.9)), 50, "min_sensitivity", "sensitivity_normal"),
        (report(accuracy=0.87), report(), 50, "max_drop", "accuracy"),
        (report(auc=0.93), report(), 50, "max_drop", "macro_auc"),
        (report(ece=0.09), report(), 50, "max_drop", "ece"),
        (report(sens=(0.86, 0.9)), report(), 50, "max_drop", "sensitivity_normal"),  # above the floor, dropped 0.04
    ],
)
def test_each_rule_fails_alone(candidate, champion, gold_size, rule, metric):
    result = check(candidate, champion, POLICY, gold_size)
    assert not result.passed
    failed = [c for c in result.checks if not c.passed]
    assert [(c.rule, c.metric) for c in failed] == [(rule, metric)]
    assert len(result.failures) == 1 and result.failures[0]


def test_first_model_only_meets_absolute_rules():
    assert check(report(accuracy=0.5, auc=0.6), None, POLICY, 50).passed
    assert not check(report(sens=(0.9, 0.5)), None, POLICY, 50).passed


def test_result_is_json_ready():
    data = check(report(accuracy=0.5), report(), POLICY, 50).to_dict()
    assert data["passed"] is False and data["failures"] and data["checks"][0]["rule"] == "gold_size"


def test_auto_promotion_rules():
    auto = AutoPromotion(enabled=True, min_margin=0.01, min_agreement=0.9)
    passed = check(report(auc=0.97), report(auc=0.95), POLICY, 50).passed
    assert auto_promotion_allowed(passed, report(auc=0.97), report(auc=0.95), auto, 0.95)[0]
    assert not auto_promotion_allowed(passed, report(auc=0.97), report(auc=0.95), replace(auto, enabled=False), 0.95)[0]
    assert not auto_promotion_allowed(passed, report(auc=0.955), report(auc=0.95), auto, 0.95)[0]
    assert not auto_promotion_allowed(passed, report(auc=0.97), report(auc=0.95), auto, 0.5)[0]
    failed = check(report(accuracy=0.5), report(), POLICY, 50).passed
    assert not auto_promotion_allowed(failed, report(auc=0.99), report(), auto, 0.99)[0]


# --- the ratchet: a floor both miss does not block a better candidate ---------------------------


def test_a_better_candidate_below_a_floor_the_champion_also_misses_passes_flagged():
    result = check(report(sens=(0.9, 0.80)), report(sens=(0.9, 0.70)), POLICY, 50)
    assert result.passed and result.below_floor == ["pneumonia"]
    assert result.verdict == "better than the champion, below the clinical floor for pneumonia"
    assert result.to_dict()["verdict"] == result.verdict


@pytest.mark.parametrize(
    "candidate, champion, why",
    [
        (report(sens=(0.9, 0.84)), report(sens=(0.9, 0.86)), "the champion meets it"),  # champion meets it
        (report(sens=(0.9, 0.73)), report(sens=(0.9, 0.75)), "the champion has 0.750"),  # worse than champion
        (report(sens=(0.9, 0.75)), report(sens=(0.9, 0.75)), "the champion has 0.750"),  # no better
        (report(sens=(0.9, 0.70)), None, "the floor is 0.850"),  # first model
    ],
)
def test_a_floor_still_blocks_unless_the_candidate_is_better_and_the_champion_misses_it(candidate, champion, why):
    result = check(candidate, champion, POLICY, 50)
    assert not result.passed and result.below_floor == []
    assert [(c.rule, c.status) for c in result.checks if not c.passed] == [("min_sensitivity", "missed")]
    assert why in result.failures[0]


def test_the_ratchet_never_excuses_another_rule():
    result = check(report(accuracy=0.80, sens=(0.9, 0.80)), report(sens=(0.9, 0.70)), POLICY, 50)
    assert not result.passed and result.below_floor == ["pneumonia"]
    assert [c.rule for c in result.checks if not c.passed] == ["max_drop"]


def test_a_class_still_being_learned_has_no_floor_yet_and_says_so():
    policy = replace(POLICY, min_class_gold=10)
    candidate = report(sens=(0.9, 0.2))
    candidate["per_class"]["normal"]["support"] = 40
    candidate["per_class"]["pneumonia"]["support"] = 4
    champion = report(sens=(0.9, 0.2))
    result = check(candidate, champion, policy, 50)
    assert result.passed and result.learning == ["pneumonia"]
    assert "still being learned: 4 of 10" in next(c.message for c in result.checks if c.status == "learning")
    candidate["per_class"]["pneumonia"]["support"] = 10  # enough gold now: the floor applies
    assert not check(candidate, champion, policy, 50).passed


def test_auto_promotion_never_promotes_a_below_floor_model():
    auto = AutoPromotion(enabled=True, min_margin=0.0, min_agreement=0.0)
    result = check(report(auc=0.97, sens=(0.9, 0.80)), report(sens=(0.9, 0.70)), POLICY, 50)
    allowed, why = auto_promotion_allowed(result.passed, report(auc=0.97), report(), auto, 1.0, result.below_floor)
    assert not allowed and "below the clinical floor" in why


# --- per site ------------------------------------------------------------------------------------


def _with_sites(base: dict, **sites: dict) -> dict:
    return {**base, "per_site": sites}


def test_a_drop_at_an_old_site_fails_even_when_the_new_site_improves():
    policy = replace(POLICY, min_site_gold=20)
    old_site = {"n": 40, "accuracy": 0.90, "macro_auc": 0.95}
    candidate = _with_sites(
        report(), old={**old_site, "accuracy": 0.85}, new={"n": 40, "accuracy": 0.9, "macro_auc": 0.9}
    )
    champion = _with_sites(report(), old=old_site, new={"n": 40, "accuracy": 0.6, "macro_auc": 0.7})
    result = check(candidate, champion, policy, 80)
    assert not result.passed
    assert [(c.rule, c.metric) for c in result.checks if not c.passed] == [("site_drop", "accuracy@old")]
    assert result.failures[0].startswith("site old:")


def test_sites_with_too_few_gold_images_are_not_compared():
    policy = replace(POLICY, min_site_gold=20)
    candidate = _with_sites(report(), small={"n": 5, "accuracy": 0.2, "macro_auc": 0.5})
    champion = _with_sites(report(), small={"n": 5, "accuracy": 0.9, "macro_auc": 0.9})
    assert check(candidate, champion, policy, 50).passed


def test_a_candidate_adding_a_class_is_not_blocked_by_the_drop_of_the_class_it_split_from():
    champion = report(accuracy=0.70, auc=0.80, sens=(0.9, 0.95))  # called every viral film bacterial
    candidate = report(accuracy=0.80, auc=0.90, sens=(0.9, 0.85))  # learnt viral: bacterial recall fell
    assert not check(candidate, champion, POLICY, 50).passed
    result = check(candidate, champion, POLICY, 50, new_classes=["viral"])
    assert result.passed
    graced = [c for c in result.checks if c.status == "grace"]
    assert [c.metric for c in graced] == ["sensitivity_pneumonia"] and "reported, not blocking" in graced[0].message
    worse = report(accuracy=0.60, auc=0.90, sens=(0.9, 0.85))  # overall accuracy still guards
    assert not check(worse, champion, POLICY, 50, new_classes=["viral"]).passed
