"""The gate on hand-made metric dicts (values taken as exact: each rule can fail alone) and on hand-made
gold sets where the answer is known (the paired bootstrap: better, worse, and noise)."""

import json
from dataclasses import replace

import numpy as np
import pytest

from learning.intervals import paired_bootstrap
from learning.metrics import evaluate
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
        (report(sens=(0.79, 0.9)), report(sens=(0.81, 0.9)), 50, "min_sensitivity", "sensitivity_normal"),
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


def test_a_candidate_below_a_floor_the_champion_also_misses_passes_flagged():
    result = check(report(auc=0.97, sens=(0.9, 0.80)), report(sens=(0.9, 0.70)), POLICY, 50)
    assert result.passed and result.below_floor == ["pneumonia"] and result.better
    assert result.verdict == "better than the champion, below the clinical floor for pneumonia"
    assert result.to_dict()["verdict"] == result.verdict
    same_auc = check(report(sens=(0.9, 0.80)), report(sens=(0.9, 0.70)), POLICY, 50)
    assert same_auc.passed and same_auc.better is False
    assert same_auc.verdict == "passed, below the clinical floor for pneumonia"


@pytest.mark.parametrize(
    "candidate, champion, why",
    [
        (report(sens=(0.9, 0.84)), report(sens=(0.9, 0.86)), "the champion meets it"),  # champion meets it
        (report(sens=(0.9, 0.70)), None, "the floor is 0.850"),  # first model
    ],
)
def test_a_floor_blocks_where_the_champion_meets_it_or_there_is_no_champion(candidate, champion, why):
    result = check(candidate, champion, POLICY, 50)
    assert not result.passed and result.below_floor == []
    assert [(c.rule, c.status) for c in result.checks if not c.passed] == [("min_sensitivity", "missed")]
    assert why in result.failures[0]


@pytest.mark.parametrize("mine", [0.73, 0.75])  # a little worse than the champion, or the same
def test_a_floor_the_champion_misses_too_does_not_block_a_candidate_no_better_on_it(mine):
    """Floors block only where the champion meets them; a real drop on the class is max_drop's."""
    result = check(report(sens=(0.9, mine)), report(sens=(0.9, 0.75)), POLICY, 50)
    assert result.passed and result.below_floor == ["pneumonia"]
    assert "the champion has 0.750, not credibly above it either" in result.checks[2].message
    assert not check(report(sens=(0.9, 0.70)), report(sens=(0.9, 0.75)), POLICY, 50).passed  # dropped 0.05


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
    assert check(candidate, champion, policy, 50).below_floor == ["pneumonia"]
    assert not check(candidate, None, policy, 50).passed


def test_auto_promotion_never_promotes_a_below_floor_model():
    auto = AutoPromotion(enabled=True, min_margin=0.0, min_agreement=0.0)
    result = check(report(auc=0.97, sens=(0.9, 0.80)), report(sens=(0.9, 0.70)), POLICY, 50)
    allowed, why = auto_promotion_allowed(result.passed, report(auc=0.97), report(), auto, 1.0, result.below_floor)
    assert not allowed and "below the clinical floor" in why


def test_auto_promotion_leaves_what_the_gold_set_cannot_tell_to_an_engineer():
    auto = AutoPromotion(enabled=True, min_margin=0.0, min_agreement=0.0)
    result = gated(NOISE_BOTH_WAYS)
    assert result.passed and result.uncertain
    mine = {"macro_auc": 0.99}
    allowed, why = auto_promotion_allowed(True, mine, {"macro_auc": 0.9}, auto, 1.0, [], result.uncertain)
    assert not allowed and why.startswith("the gold set cannot tell for sensitivity_normal")
    assert auto_promotion_allowed(True, mine, {"macro_auc": 0.9}, auto, 1.0, [], [])[0]


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


# --- the paired bootstrap on hand-made gold sets where the answer is known ------------------------

NAMES = ["normal", "bacterial", "viral"]
FLOORS = GatePolicy(
    min_gold_size=20,
    min_sensitivity={"normal": 0.90, "bacterial": 0.75, "viral": 0.65},
    max_drop={"accuracy": 0.02, "macro_auc": 0.01, "sensitivity": 0.03, "ece": 0.03},
    min_class_gold=10,
)


def gold_set(rows: list[tuple], names: list[str] = NAMES, seed: int = 0):
    """rows: (class, films, champion right?, candidate right?, hard?). A wrong call names the next
    class; on a hard film the model is torn between its call and the other (0.5 against 0.45), so
    a flipped hard film barely moves the ranking: that is what noise between two models looks like."""
    rng = np.random.default_rng(seed)
    k = len(names)
    truth, models = [], ([], [])
    for name, films, *right, hard in rows:
        t = names.index(name)
        for _ in range(films):
            truth.append(t)
            for scores, is_right in zip(models, right):
                called, other = (t, (t + 1) % k) if is_right else ((t + 1) % k, t)
                p = np.full(k, 0.0)
                if hard:
                    p[called], p[other] = 0.5 + 0.04 * rng.random(), 0.45 - 0.04 * rng.random()
                else:
                    p[called] = 0.75 + 0.2 * rng.random()
                    p[other] = (1 - p[called]) * 0.6
                rest = [c for c in range(k) if c not in (called, other)]
                p[rest] = (1 - p[called] - p[other]) / max(len(rest), 1)
                scores.append(p / p.sum())
    truth_array = np.array(truth)
    champion, candidate = (np.array(scores) for scores in models)
    return truth_array, candidate, champion


def gated(rows: list[tuple], policy: GatePolicy = FLOORS, names: list[str] = NAMES, groups=None):
    truth, candidate, champion = gold_set(rows, names)
    mine, theirs = (evaluate(truth, p, names).to_dict() for p in (candidate, champion))
    comparison = paired_bootstrap(truth, candidate, champion, names, groups, resamples=2000)
    return check(mine, theirs, policy, len(truth), comparison=comparison)


def floor(result, name: str):
    return next(c for c in result.checks if c.rule == "min_sensitivity" and c.metric == f"sensitivity_{name}")


# the round 1: normal sensitivity 0.862 against the champion's 0.938 on 65 normal films
NOISE_FIVE_TO_NONE = [
    ("normal", 56, True, True, False),
    ("normal", 5, True, False, True),  # five hard films the candidate now calls bacterial
    ("normal", 4, False, False, False),
    ("bacterial", 54, True, True, False),
    ("bacterial", 6, False, False, False),
    ("viral", 36, True, True, False),
    ("viral", 9, False, False, False),
]
NOISE_BOTH_WAYS = [
    ("normal", 54, True, True, False),
    ("normal", 7, True, False, True),  # seven the candidate lost
    ("normal", 2, False, True, True),  # two it gained
    ("normal", 2, False, False, False),
    ("bacterial", 54, True, True, False),
    ("bacterial", 6, False, False, False),
    ("viral", 36, True, True, False),
    ("viral", 9, False, False, False),
]


@pytest.mark.parametrize("rows", [NOISE_FIVE_TO_NONE, NOISE_BOTH_WAYS], ids=["five-to-none", "both-ways"])
def test_noise_on_65_normal_films_blocks_nothing_and_is_not_better(rows):
    result = gated(rows)
    normal = floor(result, "normal")
    assert round(normal.value, 3) == 0.862
    assert (normal.passed, normal.status) == (True, "uncertain")
    assert (
        "0.862 [" in normal.message
        and "not credibly" in normal.message
        and "the champion has 0.938 [" in normal.message
    )
    drops = [c for c in result.checks if c.rule == "max_drop" and c.metric in ("accuracy", "sensitivity_normal")]
    assert all(c.passed and c.status == "uncertain" and "within the noise" in c.message for c in drops)
    assert result.passed, result.failures
    assert result.better is False and result.better_reason.startswith("not shown better")
    assert set(result.uncertain) >= {"sensitivity_normal", "accuracy"}


def test_five_films_to_none_convince_the_bootstrap_but_not_mcnemar():
    """Why the paired calls also need McNemar: the bootstrap misses all five films in under 1 % of
    resamples, so its interval excludes zero, while five to none is p = 0.0625."""
    truth, candidate, champion = gold_set(NOISE_FIVE_TO_NONE)
    found_key = "sensitivity_normal"
    found = paired_bootstrap(truth, candidate, champion, NAMES).metrics[found_key]
    assert found.difference.high < 0 and found.discordant == (0, 5)
    assert found.mcnemar_p == pytest.approx(0.0625)
    drop = next(c for c in gated(NOISE_FIVE_TO_NONE).checks if c.rule == "max_drop" and c.metric == found_key)
    assert "McNemar p = 0.062" in drop.message and "0 films right only for the candidate, 5" in drop.message


CLEARLY_BETTER = [
    ("normal", 58, True, True, False),
    ("normal", 5, False, True, False),
    ("normal", 2, True, False, False),
    ("bacterial", 40, True, True, False),
    ("bacterial", 16, False, True, False),
    ("bacterial", 4, False, False, False),
    ("viral", 20, True, True, False),
    ("viral", 20, False, True, False),
    ("viral", 5, False, False, False),
]


def swapped(rows: list[tuple]) -> list[tuple]:
    return [(name, films, candidate, champion, hard) for name, films, champion, candidate, hard in rows]


def test_a_clearly_better_candidate_passes_and_is_better():
    result = gated(CLEARLY_BETTER)
    assert result.passed, result.failures
    assert result.better is True and result.verdict == "passed: better than the champion"
    difference = result.comparison.metrics["macro_auc"].difference
    assert difference.low > 0 and result.better_reason.startswith("better than the champion: macro AUC +")
    viral = floor(result, "viral")
    assert viral.status == "met" and result.to_dict()["better"] is True


def test_a_clearly_worse_candidate_is_blocked_by_confirmed_drops_and_a_floor_the_champion_meets():
    result = gated(swapped(CLEARLY_BETTER))
    assert not result.passed and result.better is False
    failed = {c.metric: c for c in result.checks if not c.passed}
    assert {"accuracy", "macro_auc", "sensitivity_viral"} <= set(failed)
    assert "a change the interval confirms" in failed["accuracy"].message
    viral = floor(result, "viral")
    assert viral.status == "missed" and "credibly below it; the champion meets it (0.889 [" in viral.message


def test_a_floor_both_miss_credibly_is_flagged_not_blocking():
    rows = [
        ("normal", 60, True, True, False),
        ("bacterial", 55, True, True, False),
        ("viral", 18, True, True, False),
        ("viral", 2, False, True, True),  # the candidate finds two more viral films of 45
        ("viral", 25, False, False, False),
    ]
    result = gated(rows)
    viral = floor(result, "viral")
    assert viral.status == "below_floor" and viral.passed and "better than the champion's" in viral.message
    assert result.passed and result.below_floor == ["viral"]


def test_few_gold_films_of_a_class_are_said_in_words():
    names = [*NAMES, "covid19"]
    policy = replace(FLOORS, min_sensitivity={**FLOORS.min_sensitivity, "covid19": 0.8})
    rows = [
        ("normal", 60, True, True, False),
        ("bacterial", 55, True, True, False),
        ("viral", 40, True, True, False),
        ("covid19", 11, True, True, False),
        ("covid19", 4, False, False, False),
    ]
    result = gated(rows, policy, names)
    covid = floor(result, "covid19")
    assert covid.status == "uncertain" and covid.passed
    assert "only 15 gold films of covid19: intervals are wide" in covid.message
    assert result.few_gold == ["only 15 gold films of covid19: intervals are wide"]
    patients = [f"p{i // 3}" for i in range(170)]  # three films a patient: said too
    assert "only 15 gold films of covid19 from 6 patients" in gated(rows, policy, names, patients).few_gold[0]


def test_better_reads_the_primary_metric_of_the_policy():
    result = gated(CLEARLY_BETTER, replace(FLOORS, primary_metric="accuracy"))
    assert result.better is True and result.primary_metric == "accuracy"
    assert "accuracy +0.229 [" in result.better_reason and "McNemar p < 0.001; 41 films" in result.better_reason


def test_the_result_carries_its_intervals_as_json():
    data = gated(NOISE_BOTH_WAYS).to_dict()
    normal = data["comparison"]["metrics"]["sensitivity_normal"]
    assert normal["support"] == 65 and normal["discordant"] == [2, 7]
    assert normal["candidate"]["low"] < normal["candidate"]["value"] < normal["candidate"]["high"]
    assert data["comparison"]["resamples"] == 2000 and data["uncertain"] and data["better"] is False
    assert json.loads(json.dumps(data, allow_nan=False)) == data


def _calls(truth: list[int], called: list[int], k: int = 3) -> np.ndarray:
    """Confident calls: 0.8 on the class called, the rest shared."""
    p = np.full((len(truth), k), 0.2 / (k - 1))
    p[np.arange(len(truth)), called] = 0.8
    return p


def _called_alike(rows: tuple) -> tuple[list[int], list[int]]:
    """Films two models call alike: (class, films, wrong) per row, a wrong call naming the next class."""
    truth: list[int] = []
    calls: list[int] = []
    for t, films, wrong in rows:
        truth += [t] * films
        calls += [t] * (films - wrong) + [(t + 1) % 3] * wrong
    return truth, calls


def _site_b_gold(candidate_calls_others_right: bool):
    """150 films the two models call alike (a few wrong), then a new site's 50 where the champion
    calls every film viral; the candidate calls that site's viral films bacterial, and its normal
    and bacterial films right (or, in the second case, still viral)."""
    truth, calls = _called_alike(((0, 50, 2), (1, 60, 8), (2, 40, 10)))
    champion, candidate = list(calls), list(calls)
    for t, films in ((0, 20), (1, 20), (2, 10)):
        truth += [t] * films
        champion += [2] * films
        candidate += [1] * films if t == 2 else [t if candidate_calls_others_right else 2] * films
    truth_array = np.array(truth)
    return truth_array, _calls(truth, candidate), _calls(truth, champion)


def test_sensitivity_a_champion_bought_by_calling_a_class_everywhere_is_no_loss():
    """At a new site the champion calls every film viral: it finds all 10 viral films there and no
    other film. A candidate that reads that site right but misses its viral films loses viral
    sensitivity, credibly, and gains as much specificity: traded, not blocking; the floors and
    the other rules still hold it."""
    truth, candidate, champion = _site_b_gold(candidate_calls_others_right=True)
    mine, theirs = (evaluate(truth, p, NAMES).to_dict() for p in (candidate, champion))
    comparison = paired_bootstrap(truth, candidate, champion, NAMES, resamples=2000)
    assert comparison.metrics["sensitivity_viral"].difference.high < 0  # a drop the interval confirms
    result = check(mine, theirs, replace(FLOORS, min_sensitivity={}), len(truth), comparison=comparison)
    viral = next(c for c in result.checks if c.rule == "max_drop" and c.metric == "sensitivity_viral")
    assert (viral.passed, viral.status) == (True, "traded")
    assert "specificity for viral rose by +" in viral.message and "Youden's J" in viral.message
    assert result.passed, result.failures

    # the same drop without the specificity to show for it is a loss
    truth, candidate, champion = _site_b_gold(candidate_calls_others_right=False)
    mine, theirs = (evaluate(truth, p, NAMES).to_dict() for p in (candidate, champion))
    comparison = paired_bootstrap(truth, candidate, champion, NAMES, resamples=2000)
    result = check(mine, theirs, replace(FLOORS, min_sensitivity={}), len(truth), comparison=comparison)
    viral = next(c for c in result.checks if c.rule == "max_drop" and c.metric == "sensitivity_viral")
    assert (viral.passed, viral.status) == (False, "") and not result.passed


def _first_round_at_a_new_site(site_a_viral_lost: int = 0):
    """The MC-dropout benchmark's first new-site round (docs/benchmarks.md): 248 gold films of the old
    site that both models call alike, and 46 of a new site where the champion calls every film viral.
    The candidate reads the new site: all 16 normal films, 4 of 15 bacterial (9 called viral, 2
    normal) and 2 of 15 viral (4 called bacterial, 9 normal). Optionally it also loses
    `site_a_viral_lost` of the old site's viral films to bacterial."""
    truth, calls = _called_alike(((0, 50, 1), (1, 128, 34), (2, 70, 22)))
    champion, candidate = list(calls), list(calls)
    lost = [i for i, (t, c) in enumerate(zip(truth, candidate)) if t == 2 and c == 2][:site_a_viral_lost]
    for i in lost:
        candidate[i] = 1
    for t, calls in ((0, [0] * 16), (1, [1] * 4 + [2] * 9 + [0] * 2), (2, [2] * 2 + [1] * 4 + [0] * 9)):
        truth += [t] * len(calls)
        champion += [2] * len(calls)
        candidate += calls
    truth_array = np.array(truth)
    candidate_p, champion_p = _calls(truth, candidate), _calls(truth, champion)
    mine, theirs = (evaluate(truth_array, p, NAMES).to_dict() for p in (candidate_p, champion_p))
    comparison = paired_bootstrap(truth_array, candidate_p, champion_p, NAMES, resamples=2000)
    return mine, theirs, comparison


def test_a_trade_diluted_by_the_old_sites_films_is_judged_by_youdens_j_interval():
    """Pooled with the old site, the new site's trade leaves viral sensitivity credibly lower (-0.15),
    specificity credibly higher (+0.11) and J's point value 0.05 lower, beyond the 0.03 allowed, but
    J's paired interval spans zero: a trade, not a loss. The benchmark's candidate was better on
    held-out films of the new site (0.256 -> 0.611) and even on the old site's."""
    mine, theirs, comparison = _first_round_at_a_new_site()
    viral = comparison.metrics["sensitivity_viral"]
    youden = comparison.metrics["youden_viral"]
    assert viral.difference.high < 0 and comparison.metrics["specificity_viral"].difference.low > 0
    assert youden.difference.value < -0.03 and youden.difference.low < 0 < youden.difference.high
    assert youden.support == 294  # J rests on every gold film
    result = check(mine, theirs, replace(FLOORS, min_sensitivity={}), 294, comparison=comparison)
    check_ = next(c for c in result.checks if c.rule == "max_drop" and c.metric == "sensitivity_viral")
    assert (check_.passed, check_.status) == (True, "traded"), check_.message
    assert "Youden's J 0.430 to 0.382, -0.048 [" in check_.message
    assert result.passed, result.failures

    # without the bootstrap, the point values are taken as exact: the same drop of J blocks
    exact = check(mine, theirs, replace(FLOORS, min_sensitivity={}), 294)
    assert not next(c for c in exact.checks if c.metric == "sensitivity_viral" and c.rule == "max_drop").passed


def test_a_trade_that_also_loses_the_old_sites_films_is_a_loss():
    mine, theirs, comparison = _first_round_at_a_new_site(site_a_viral_lost=12)
    youden = comparison.metrics["youden_viral"]
    assert youden.difference.high < 0  # J's fall is confirmed
    result = check(mine, theirs, replace(FLOORS, min_sensitivity={}), 294, comparison=comparison)
    viral = next(c for c in result.checks if c.rule == "max_drop" and c.metric == "sensitivity_viral")
    assert (viral.passed, viral.status) == (False, "") and not result.passed


def _learning_viral_gold(lost_to: int = 2, viral_found: tuple[int, int] = (7, 10)):
    """The new-class benchmark's round 3 (docs/benchmarks.md): 65 normal, 145 bacterial and 15 viral
    gold films. The candidate calls 6 bacterial films that the champion called right `lost_to` (viral
    by default) and finds viral_found[1] of the viral films where the champion found viral_found[0]."""
    truth, calls = _called_alike(((0, 65, 2), (1, 139, 3)))
    champion, candidate = list(calls), list(calls)
    truth += [1] * 6
    champion += [1] * 6
    candidate += [lost_to] * 6
    for found in range(15):
        truth.append(2)
        champion.append(2 if found < viral_found[0] else 1)
        candidate.append(2 if found < viral_found[1] else 1)
    truth_array = np.array(truth)
    candidate_p, champion_p = _calls(truth, candidate), _calls(truth, champion)
    mine, theirs = (evaluate(truth_array, p, NAMES).to_dict() for p in (candidate_p, champion_p))
    comparison = paired_bootstrap(truth_array, candidate_p, champion_p, NAMES, resamples=2000)
    return mine, theirs, comparison


def _bacterial_drop(result):
    return next(c for c in result.checks if c.rule == "max_drop" and c.metric == "sensitivity_bacterial")


def test_films_handed_to_a_class_still_being_learned_are_not_forgotten():
    """The champion finds 7 of 15 viral films, under the 0.65 floor. The candidate finds 10, and the
    6 bacterial films it no longer finds it calls viral: a bacterial drop the interval and McNemar
    confirm, handed to viral, not blocking. On held-out films of that site the candidate was better."""
    mine, theirs, comparison = _learning_viral_gold()
    dropped = comparison.metrics["sensitivity_bacterial"]
    assert dropped.difference.high < 0 and dropped.mcnemar_p < 0.05
    result = check(mine, theirs, FLOORS, 225, comparison=comparison)
    bacterial = _bacterial_drop(result)
    assert (bacterial.passed, bacterial.status) == (True, "handed")
    assert "calls 6 more bacterial films viral, a class still being learned" in bacterial.message
    assert "the champion finds 0.467 of its films, under the 0.65 floor" in bacterial.message
    assert result.passed, result.failures


@pytest.mark.parametrize(
    ("lost_to", "viral_found", "floors", "why"),
    [
        (0, (7, 10), FLOORS, "the bacterial films went to normal: forgotten, not handed"),
        (2, (7, 7), FLOORS, "viral gained nothing for them"),
        (2, (7, 10), replace(FLOORS, min_sensitivity={"normal": 0.9, "bacterial": 0.75}), "viral has no floor"),
        (2, (12, 15), FLOORS, "the champion already meets viral's floor: the class is learned"),
    ],
)
def test_a_drop_is_handed_only_to_a_class_still_being_learned_that_the_candidate_finds_more_of(
    lost_to, viral_found, floors, why
):
    mine, theirs, comparison = _learning_viral_gold(lost_to, viral_found)
    result = check(mine, theirs, floors, 225, comparison=comparison)
    bacterial = _bacterial_drop(result)
    assert (bacterial.passed, bacterial.status) == (False, ""), why
    assert not result.passed


def test_a_class_with_too_few_gold_films_for_its_floor_is_still_being_learned():
    mine, theirs, comparison = _learning_viral_gold()
    no_viral_floor = replace(FLOORS, min_sensitivity={"normal": 0.9, "bacterial": 0.75}, min_class_gold=20)
    bacterial = _bacterial_drop(check(mine, theirs, no_viral_floor, 225, comparison=comparison))
    assert (bacterial.passed, bacterial.status) == (True, "handed")
    assert "viral, a class still being learned (15 of 20 adjudicated gold films)" in bacterial.message


def test_a_site_with_few_gold_films_is_said_in_words():
    """A new site's 15 gold films per class confirm only large drops there: the gate says so."""
    per_class = {name: {"support": count} for name, count in (("normal", 16), ("bacterial", 15), ("viral", 15))}
    large = {name: {"support": 60} for name in ("normal", "bacterial", "viral")}
    sites = {
        "old": {"n": 180, "accuracy": 0.9, "macro_auc": 0.95, "per_class": large},
        "site-b": {"n": 46, "accuracy": 0.7, "macro_auc": 0.86, "per_class": per_class},
        "site-c": {"n": 8, "accuracy": 0.5, "macro_auc": 0.7, "per_class": {"normal": {"support": 8}}},
    }
    candidate = _with_sites(report(), **sites)
    few = check(candidate, candidate, replace(POLICY, min_site_gold=20, few_class_gold=30), 234).few_gold
    assert few == [
        "only 46 gold films at site-b (16 normal, 15 bacterial, 15 viral): intervals there are wide, and only a "
        "large drop there can be confirmed",
        "only 8 gold films at site-c: too few to compare the models there (the policy needs 20)",
    ]
    one_site = _with_sites(report(), **{"site-b": sites["site-b"]})
    assert check(one_site, one_site, replace(POLICY, min_site_gold=20), 46).few_gold == []


@pytest.mark.parametrize(
    "value, shown",
    [
        (-0.0003, "-0.0003"),
        (0.0002, "+0.0002"),
        (-0.00001, "-0.0000"),
        (-1e-17, "+0.000"),
        (0.0, "+0.000"),
        (-0.0184, "-0.018"),
        (0.0126, "+0.013"),
    ],
)
def test_a_bound_near_zero_shows_the_side_of_zero_it_lies_on(value, shown):
    """A drop whose interval ends at -0.0003 is confirmed; printed as +0.000 it read as a contradiction."""
    from registry.gate import _signed

    assert _signed(value) == shown
