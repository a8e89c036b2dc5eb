"""The validation gate, pure: candidate and champion metrics plus a policy in, a verdict with reasons out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from learning.intervals import Comparison, Interval, MetricComparison
from learning.metrics import PER_CLASS_METRICS, metric_key

LOWER_IS_BETTER = ("ece",)
PRIMARY_METRICS = ("macro_auc", "accuracy", "ece")
LABELS = {"macro_auc": "macro AUC", "accuracy": "accuracy", "ece": "ECE"}


@dataclass(frozen=True)
class AutoPromotion:
    """When a candidate may be promoted without an engineer."""

    enabled: bool = False
    min_margin: float = 0.0  # candidate macro AUC above the champion's by at least this
    min_agreement: float = 1.0  # recent model-doctor agreement


@dataclass(frozen=True)
class GatePolicy:
    min_gold_size: int
    min_sensitivity: dict[str, float] = field(default_factory=dict)  # clinical floors, per class
    max_drop: dict[str, float] = field(default_factory=dict)  # per metric, against champion
    auto_promote: AutoPromotion = AutoPromotion()
    min_class_gold: int = 0  # below this many gold images a class is still "learning"
    min_site_gold: int = 0  # sites with at least this many gold images are compared per site
    primary_metric: str = "macro_auc"  # "better" is a claim about this metric's paired difference
    bootstrap_resamples: int = 2000
    confidence: float = 0.95  # of every interval; McNemar's test is read at 1 - confidence
    bootstrap_seed: int = 0
    few_class_gold: int = 30  # fewer gold films of a class than this: the gate says its intervals are wide


@dataclass(frozen=True)
class Check:
    rule: str  # gold_size | min_sensitivity | max_drop | site_drop
    metric: str
    value: float | None
    threshold: float | None
    passed: bool
    message: str
    # min_sensitivity: met | uncertain (below the floor, not credibly) | below_floor (credibly below a
    # floor the champion does not credibly meet: flagged) | missed (blocks) | learning;
    # max_drop: uncertain (a drop beyond max_drop the interval does not confirm) | grace | traded (a
    # class's sensitivity given up for as much specificity: the champion called it more often, not better)
    # | handed (a class's films given to a class still being learned, which the candidate finds more of)
    status: str = ""


@dataclass(frozen=True)
class GateResult:
    passed: bool
    checks: list[Check]
    better: bool | None = None  # the paired interval on the primary metric lies on the better side of zero
    better_reason: str = ""
    primary_metric: str = "macro_auc"
    comparison: Comparison | None = None
    few_gold: list[str] = field(default_factory=list)  # "only 15 gold films of covid19: intervals are wide"

    @property
    def failures(self) -> list[str]:
        return [check.message for check in self.checks if not check.passed]

    @property
    def below_floor(self) -> list[str]:
        """Classes credibly below a floor the champion does not credibly meet: allowed, flagged."""
        return [c.metric.removeprefix("sensitivity_") for c in self.checks if c.status == "below_floor"]

    @property
    def learning(self) -> list[str]:
        return [c.metric.removeprefix("sensitivity_") for c in self.checks if c.status == "learning"]

    @property
    def uncertain(self) -> list[str]:
        """Metrics under a floor or down by more than max_drop where the gold set cannot tell: not blocking."""
        return list(dict.fromkeys(c.metric for c in self.checks if c.status == "uncertain"))

    @property
    def verdict(self) -> str:
        if not self.passed:
            return "failed"
        lead = "better than the champion" if self.better else "passed"
        if self.below_floor:
            return f"{lead}, below the clinical floor for {', '.join(self.below_floor)}"
        return "passed: better than the champion" if self.better else "passed"

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "verdict": self.verdict,
            "better": self.better,
            "better_reason": self.better_reason,
            "primary_metric": self.primary_metric,
            "failures": self.failures,
            "below_floor": self.below_floor,
            "learning": self.learning,
            "uncertain": self.uncertain,
            "few_gold": self.few_gold,
            "checks": [asdict(check) for check in self.checks],
            "comparison": self.comparison.to_dict() if self.comparison else None,
        }


def check(
    candidate: dict,
    champion: dict | None,
    policy: GatePolicy,
    gold_size: int,
    new_classes: list[str] | None = None,
    comparison: Comparison | None = None,
) -> GateResult:
    """`candidate` and `champion` are learning.metrics.EvaluationReport.to_dict() outputs on the
    same gold snapshot (with `per_site` reports where the gold set has them); champion is None for
    the first model (only absolute rules apply). `comparison` is learning.intervals.paired_bootstrap
    on the same images (with `per_site` for the same sites): every rule then reads intervals. Without
    it each value is taken as exact, as if the gold set had no noise.

    A gold set of a few dozen films per class moves by several films from one draw to the next, so:
    - a drop fails max_drop only when it exceeds max_drop and the paired interval of the difference
      confirms it (for right/wrong calls per image, McNemar's exact test too);
    - a floor blocks only when the candidate is credibly below it (its interval's upper bound is
      under the floor) and the champion credibly meets it (its lower bound is at or above the
      floor), or there is no champion. Below the floor but not credibly is "uncertain"; credibly
      below a floor the champion does not credibly meet is "below_floor", flagged: that is the
      ratchet, a candidate no worse on every rule may replace a champion that misses a floor too;
    - "better" is the paired interval on `policy.primary_metric` lying wholly on the better side
      of zero. It is reported, it does not decide.
    A class with fewer than `min_class_gold` gold images is still being learned: its floor waits.

    `new_classes` are classes the candidate predicts and the champion does not know. A new class
    takes its images from the classes it was confused with, so the champion's per-class figures for
    those were inflated: per-class drops are then reported, not blocking, while accuracy, macro
    AUC, calibration and every floor the champion meets still hold the candidate. While the champion
    knows the class but is still learning it (under its floor, or too few gold films), a confirmed
    drop of another class whose lost films it now calls is "handed", not blocking (`_handed`)."""
    evidence = _Evidence(candidate, champion, comparison)
    checks = [
        Check(
            "gold_size",
            "n",
            float(gold_size),
            float(policy.min_gold_size),
            gold_size >= policy.min_gold_size,
            f"gold set has {gold_size} images; the policy needs at least {policy.min_gold_size}",
        )
    ]
    for name, floor in policy.min_sensitivity.items():
        checks.append(_floor_check(name, floor, evidence, policy))
    better, why = None, "there is no champion to compare with"
    if champion is not None:
        for metric, allowed in policy.max_drop.items():
            found = _drop_checks(metric, allowed, evidence, policy)
            checks.extend(_grace(found) if new_classes and metric in PER_CLASS_METRICS else found)
        checks.extend(_site_checks(candidate, champion, policy, comparison))
        better, why = _better(policy.primary_metric, evidence)
    return GateResult(
        all(c.passed for c in checks),
        checks,
        better,
        why,
        policy.primary_metric,
        comparison,
        [few.removeprefix("; ") for name in candidate["per_class"] if (few := _few(name, evidence, policy))]
        + _few_at_sites(candidate.get("per_site") or {}, policy),
    )


class _Evidence:
    """Each metric with its intervals: from the paired bootstrap where there is one, else the
    point values alone (no bounds: taken as exact)."""

    def __init__(self, candidate: dict, champion: dict | None, comparison: Comparison | None) -> None:
        self.candidate, self.champion, self.comparison = candidate, champion, comparison
        self.alpha = 1.0 - comparison.confidence if comparison else 0.05

    def of(self, metric: str, name: str | None = None) -> MetricComparison:
        key = metric_key(metric, name) if name is not None else metric
        if self.comparison is not None and key in self.comparison.metrics:
            return self.comparison.metrics[key]
        mine, theirs = _value(self.candidate, metric, name), _value(self.champion, metric, name)
        support = (
            self.candidate.get("n", 0) if name is None else self.candidate["per_class"].get(name, {}).get("support", 0)
        )
        return MetricComparison(
            Interval(mine),
            Interval(theirs) if self.champion is not None else None,
            Interval(mine - theirs) if mine is not None and theirs is not None else None,
            support=int(support or 0),
        )


def _value(report: dict | None, metric: str, name: str | None) -> float | None:
    if report is None:
        return None
    if name is None:
        return report.get(metric)
    values = report["per_class"].get(name, {})
    if metric == "youden":  # Youden's J from the report's own figures, as learning.intervals defines it
        sensitivity, specificity = values.get("sensitivity"), values.get("specificity")
        return None if sensitivity is None or specificity is None else sensitivity + specificity - 1
    return values.get(metric)


def _floor_check(name: str, floor: float, evidence: _Evidence, policy: GatePolicy) -> Check:
    key = metric_key("sensitivity", name)
    values = evidence.candidate["per_class"].get(name, {})
    value, support = values.get("sensitivity"), int(values.get("support", 0) or 0)
    if support < policy.min_class_gold:
        return Check(
            "min_sensitivity",
            key,
            value,
            floor,
            True,
            f"{name} is still being learned: {support} of {policy.min_class_gold} adjudicated gold images; "
            "its floor applies once there are enough",
            "learning",
        )
    found = evidence.of("sensitivity", name)
    mine, theirs, few = found.candidate, found.champion, _few(name, evidence, policy)
    said = f"sensitivity for {name} is {_est(mine)}; the floor is {floor:.3f}"
    if value is not None and value >= floor:
        return Check("min_sensitivity", key, value, floor, True, f"{said}{few}", "met")
    champion_has = f"the champion has {_est(theirs)}" if theirs is not None and theirs.value is not None else ""
    if value is not None and _upper(mine) >= floor:
        why = f"{said}: below it, but not credibly (the interval reaches it)"
        return Check("min_sensitivity", key, value, floor, True, _join(why, champion_has, few), "uncertain")
    if evidence.champion is None:
        return Check("min_sensitivity", key, value, floor, False, f"{said}{few}", "missed")
    if theirs is not None and theirs.value is not None and _lower(theirs) >= floor:
        why = f"{said}, credibly below it; the champion meets it ({_est(theirs)})"
        return Check("min_sensitivity", key, value, floor, False, f"{why}{few}", "missed")
    better = value is not None and theirs is not None and theirs.value is not None and value > theirs.value
    why = f"{said}, credibly below the clinical floor; {champion_has or 'the champion has no figure'}"
    why += ", better than the champion's" if better else ", not credibly above it either"
    return Check("min_sensitivity", key, value, floor, True, f"{why}: flagged, not blocking{few}", "below_floor")


def _grace(checks: list[Check]) -> list[Check]:
    return [
        check
        if check.passed
        else Check(
            check.rule,
            check.metric,
            check.value,
            check.threshold,
            True,
            f"{check.message} (reported, not blocking: the candidate adds a class the champion does not know)",
            "grace",
        )
        for check in checks
    ]


def _site_checks(candidate: dict, champion: dict, policy: GatePolicy, comparison: Comparison | None) -> list[Check]:
    """Per site with enough gold images: no metric may drop by more than max_drop there either,
    so improving a new site never silently costs an old one."""
    checks = []
    theirs_by_site = champion.get("per_site") or {}
    for site, mine in (candidate.get("per_site") or {}).items():
        theirs = theirs_by_site.get(site)
        if theirs is None or mine.get("n", 0) < max(policy.min_site_gold, 1):
            continue
        evidence = _Evidence(mine, theirs, comparison.per_site.get(site) if comparison else None)
        for metric in ("accuracy", "macro_auc"):
            allowed = policy.max_drop.get(metric)
            if allowed is None:
                continue
            for found in _drop_checks(metric, allowed, evidence, policy):
                checks.append(
                    Check(
                        "site_drop",
                        f"{found.metric}@{site}",
                        found.value,
                        found.threshold,
                        found.passed,
                        f"site {site}: {found.message}",
                        found.status,
                    )
                )
    return checks


def _drop_checks(metric: str, allowed: float, evidence: _Evidence, policy: GatePolicy) -> list[Check]:
    candidate, champion = evidence.candidate, evidence.champion or {}
    if metric in PER_CLASS_METRICS:
        names: list[str | None] = list(candidate["per_class"])
    else:
        names = [None]
    checks = []
    for name in names:
        label = metric_key(metric, name) if name is not None else metric
        mine, theirs = _value(candidate, metric, name), _value(champion, metric, name)
        if theirs is None:
            continue  # the champion has no value to hold the candidate to
        found = evidence.of(metric, name)
        lower = metric in LOWER_IS_BETTER
        limit = theirs + allowed if lower else theirs - allowed
        within = mine is not None and (mine <= limit if lower else mine >= limit)
        moved = "rose" if lower else "fell"
        needed = f"at most {limit:.3f} is allowed" if lower else f"at least {limit:.3f} is needed"
        change = f"{_est(found.candidate)} from {_est(found.champion)}: {_change(found.difference)}"
        few = _few(name, evidence, policy) if name is not None else ""
        if within:
            message = f"{label} is {_est(found.candidate)} against {_est(found.champion)}; {needed}"
            checks.append(Check("max_drop", label, mine, limit, True, message))
        elif mine is not None and not _confirmed(found, lower, evidence.alpha):
            message = (
                f"{label} {moved} to {change}, beyond the {allowed:.3f} allowed but within the noise of the "
                f"gold set{_mcnemar(found)}: not blocking{few}"
            )
            checks.append(Check("max_drop", label, mine, limit, True, message, "uncertain"))
        elif metric == "sensitivity" and name is not None and (traded := _traded(name, found, allowed, evidence)):
            message = f"{label} {moved} to {change}, a change the interval confirms{_mcnemar(found)}, {traded}"
            checks.append(Check("max_drop", label, mine, limit, True, message, "traded"))
        elif metric == "sensitivity" and name is not None and (handed := _handed(name, found, evidence, policy)):
            message = f"{label} {moved} to {change}, a change the interval confirms{_mcnemar(found)}, {handed}"
            checks.append(Check("max_drop", label, mine, limit, True, message, "handed"))
        else:
            message = f"{label} {moved} to {change}, a change the interval confirms{_mcnemar(found)}; {needed}{few}"
            checks.append(Check("max_drop", label, mine, limit, False, message))
    return checks


def _traded(name: str, sensitivity: MetricComparison, allowed: float, evidence: _Evidence) -> str:
    """A sensitivity the champion bought by calling a class more often is no loss: where the
    candidate's specificity for the class rose credibly and Youden's J (sensitivity + specificity
    - 1) did not credibly fall by more than `allowed`, say so ("" where it is a real drop). A
    champion that calls every film of a new site "viral" finds all its viral films and none of the
    others. J is judged by its paired interval where the gate has one (learning.intervals), as every
    other drop is: on a gold set pooled over sites, the new site's trade is diluted by the old site's
    films and J's point value can fall a little while the interval says nothing. Without a bootstrap
    its values are taken as exact, so any fall beyond `allowed` is a loss."""
    specificity = evidence.of("specificity", name)
    rose, fell = specificity.difference, sensitivity.difference
    if rose is None or rose.value is None or fell is None or fell.value is None or _lower(rose) <= 0:
        return ""
    youden = evidence.of("youden", name)  # its paired interval, or without a bootstrap its exact values
    change = youden.difference
    if change is None or change.value is None:
        return ""
    if change.value < -allowed and _confirmed(youden, False, evidence.alpha):
        return ""
    was, now = (None if side is None else side.value for side in (youden.champion, youden.candidate))
    how = f"Youden's J {_fmt(was)} to {_fmt(now)}, {_change(change)}"
    return (
        f"but specificity for {name} rose by {_change(rose)}: the champion called {name} more often, not "
        f"better ({how}): not blocking"
    )


def _handed(name: str, sensitivity: MetricComparison, evidence: _Evidence, policy: GatePolicy) -> str:
    """A class's films given to a class still being learned are not forgotten: where the films of
    `name` the candidate no longer finds are all called `other` now, `other` is still being learned
    (the champion finds less of it than its clinical floor, or it has fewer than `min_class_gold`
    gold films), and the candidate's sensitivity for `other` rose by at least as much as this one
    fell, say so ("" otherwise). A gold set with 145 bacterial films and 15 viral ones counts six
    bacterial films given for three viral ones as a loss; at a site where viral pneumonia is common it
    is a gain. Accuracy, macro AUC and every floor still hold the candidate."""
    candidate, champion, fell = evidence.candidate, evidence.champion, sensitivity.difference
    names = list(candidate["per_class"])
    if champion is None or list(champion["per_class"]) != names or fell is None or fell.value is None:
        return ""
    mine, theirs, row = candidate.get("confusion"), champion.get("confusion"), names.index(name)
    if not mine or not theirs:
        return ""  # no confusion matrix: where the films went is not known
    lost = theirs[row][row] - mine[row][row]
    if lost <= 0:
        return ""
    for column, other in enumerate(names):
        if column == row or mine[row][column] - theirs[row][column] < lost:
            continue  # not where the lost films went
        rose = evidence.of("sensitivity", other).difference
        if rose is None or rose.value is None or rose.value < -fell.value:
            continue
        learning = _still_learning(other, candidate, champion, policy)
        if learning:
            return (
                f"but the candidate calls {lost} more {name} films {other}, a class still being learned "
                f"({learning}), and finds more of {other} ({_change(rose)}): not blocking"
            )
    return ""


def _still_learning(name: str, candidate: dict, champion: dict, policy: GatePolicy) -> str:
    """Why `name` is still being learned, in words ("" when it is not)."""
    support = int(candidate["per_class"][name].get("support", 0) or 0)
    if support < policy.min_class_gold:
        return f"{support} of {policy.min_class_gold} adjudicated gold films"
    floor, was = policy.min_sensitivity.get(name), _value(champion, "sensitivity", name)
    if floor is not None and was is not None and was < floor:
        return f"the champion finds {was:.3f} of its films, under the {floor:.2f} floor"
    return ""


def _confirmed(found: MetricComparison, lower_is_better: bool, alpha: float) -> bool:
    """The whole interval of the difference lies on the worse side of zero, and for right/wrong
    calls per image McNemar's exact test agrees: with a handful of films that differ, the bootstrap
    alone would call five films to none a certainty (p = 0.06)."""
    difference = found.difference
    if difference is None or difference.value is None:
        return False
    worse = _lower(difference) > 0 if lower_is_better else _upper(difference) < 0
    return worse and (found.mcnemar_p is None or found.mcnemar_p < alpha)


def _better(metric: str, evidence: _Evidence) -> tuple[bool | None, str]:
    label = LABELS.get(metric, metric)
    found = evidence.of(metric)
    difference = found.difference
    if difference is None or difference.value is None:
        return None, f"{label} is not defined for both models on this gold set: better cannot be judged"
    lower = metric in LOWER_IS_BETTER
    side = _upper(difference) < 0 if lower else _lower(difference) > 0
    change = f"{label} {_change(difference)}"
    if side and (found.mcnemar_p is None or found.mcnemar_p < evidence.alpha):
        return True, f"better than the champion: {change}{_mcnemar(found)}"
    if side:
        return False, f"not shown better: {change}{_mcnemar(found)}"
    if difference.low is not None and _lower(difference) <= 0 <= _upper(difference):
        return False, f"not shown better: {change}, an interval that includes zero"
    return False, f"not better: {change}"


def _few(name: str | None, evidence: _Evidence, policy: GatePolicy) -> str:
    """Words for a class with few gold films, appended to a message (empty when there are enough)."""
    if name is None:
        return ""
    found = evidence.of("sensitivity", name)
    counted = evidence.comparison is not None or "support" in evidence.candidate["per_class"].get(name, {})
    if not counted or found.support >= policy.few_class_gold:
        return ""
    if found.support == 0:
        return f"; no gold films of {name}: nothing measures it"
    patients = f" from {found.patients} patients" if 0 < found.patients < found.support else ""
    return f"; only {found.support} gold films of {name}{patients}: intervals are wide"


def _few_at_sites(per_site: dict, policy: GatePolicy) -> list[str]:
    """Words for each site whose part of the gold set is small, where the gold set has several sites:
    a new site's 15 films per class confirm only large drops there."""
    if len(per_site) < 2:
        return []
    notes = []
    for site, report in per_site.items():
        n = int(report.get("n", 0) or 0)
        counts = {name: int(values.get("support", 0) or 0) for name, values in (report.get("per_class") or {}).items()}
        if n < max(policy.min_site_gold, 1):
            notes.append(
                f"only {n} gold films at {site}: too few to compare the models there (the policy needs "
                f"{policy.min_site_gold})"
            )
        elif any(0 < count < policy.few_class_gold for count in counts.values()):
            each = ", ".join(f"{count} {name}" for name, count in counts.items() if count)
            notes.append(
                f"only {n} gold films at {site} ({each}): intervals there are wide, and only a large "
                "drop there can be confirmed"
            )
    return notes


def _upper(interval: Interval) -> float:
    return interval.high if interval.high is not None else interval.value  # type: ignore[return-value]


def _lower(interval: Interval) -> float:
    return interval.low if interval.low is not None else interval.value  # type: ignore[return-value]


def _est(interval: Interval | None) -> str:
    """0.862 [0.78, 0.93]; the point alone where there is no interval."""
    if interval is None or interval.value is None:
        return "n/a"
    if interval.low is None or interval.high is None:
        return f"{interval.value:.3f}"
    return f"{interval.value:.3f} [{interval.low:.2f}, {interval.high:.2f}]"


def _change(interval: Interval | None) -> str:
    """-0.076 [-0.138, -0.015]: a difference, signed."""
    if interval is None or interval.value is None:
        return "n/a"
    if interval.low is None or interval.high is None:
        return _signed(interval.value)
    return f"{_signed(interval.value)} [{_signed(interval.low)}, {_signed(interval.high)}]"


def _signed(value: float) -> str:
    """+0.012. A bound near zero keeps its side of it, which is what decides: -0.0003, not +0.000
    beside "a change the interval confirms"; float noise and a true zero read +0.000."""
    if 1e-9 < abs(value) < 5e-4:
        return f"{value:+.4f}"
    return f"{round(value, 3) + 0.0:+.3f}"  # + 0.0: a zero is +0.000, not -0.000


def _mcnemar(found: MetricComparison) -> str:
    if found.mcnemar_p is None or found.discordant is None:
        return ""
    only_mine, only_theirs = found.discordant
    films = f"{only_mine} films right only for the candidate, {only_theirs} only for the champion"
    p = "p < 0.001" if found.mcnemar_p < 0.001 else f"p = {found.mcnemar_p:.3f}"
    return f" (McNemar {p}; {films})"


def _join(*parts: str) -> str:
    return "; ".join(part.removeprefix("; ") for part in parts if part)


def auto_promotion_allowed(
    gate_passed: bool,
    candidate: dict,
    champion: dict | None,
    auto: AutoPromotion,
    agreement: float | None,
    below_floor: list[str] | None = None,
    uncertain: list[str] | None = None,
) -> tuple[bool, str]:
    """Promote without an engineer only when config allows it, the gate passed with every floor
    met and nothing left uncertain, the candidate beats the champion by a margin, and doctors
    recently agreed with the model."""
    if not auto.enabled:
        return False, "auto-promotion is off"
    if not gate_passed:
        return False, "the gate failed"
    if below_floor:
        return False, f"below the clinical floor for {', '.join(below_floor)}: an engineer decides"
    if uncertain:
        return False, f"the gold set cannot tell for {', '.join(uncertain)}: an engineer decides"
    margin = auto.min_margin
    mine = candidate.get("macro_auc")
    theirs = champion.get("macro_auc") if champion else None
    if mine is None or (theirs is not None and mine < theirs + margin):
        return False, f"macro AUC {_fmt(mine)} is not {margin:.3f} above the champion's {_fmt(theirs)}"
    floor = auto.min_agreement
    if agreement is None or agreement < floor:
        return False, f"recent model-doctor agreement {_fmt(agreement)} is below {floor:.2f}"
    return True, (f"gate passed, macro AUC {mine:.3f} vs {_fmt(theirs)}, agreement {agreement:.2f}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
