"""The validation gate, pure: candidate and champion metrics plus a policy in, a verdict with reasons out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from learning.metrics import PER_CLASS_METRICS, metric_key

LOWER_IS_BETTER = ("ece",)


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


@dataclass(frozen=True)
class Check:
    rule: str  # gold_size | min_sensitivity | max_drop
    metric: str
    value: float | None
    threshold: float | None
    passed: bool
    message: str
    status: str = ""  # min_sensitivity: met | below_floor (ratchet) | learning | missed


@dataclass(frozen=True)
class GateResult:
    passed: bool
    checks: list[Check]

    @property
    def failures(self) -> list[str]:
        return [check.message for check in self.checks if not check.passed]

    @property
    def below_floor(self) -> list[str]:
        """Classes whose floor both models miss while the candidate is better: allowed, flagged."""
        return [c.metric.removeprefix("sensitivity_") for c in self.checks if c.status == "below_floor"]

    @property
    def learning(self) -> list[str]:
        return [c.metric.removeprefix("sensitivity_") for c in self.checks if c.status == "learning"]

    @property
    def verdict(self) -> str:
        if not self.passed:
            return "failed"
        if self.below_floor:
            return f"better than the champion, below the clinical floor for {', '.join(self.below_floor)}"
        return "passed"

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "verdict": self.verdict,
            "failures": self.failures,
            "below_floor": self.below_floor,
            "learning": self.learning,
            "checks": [asdict(check) for check in self.checks],
        }


def check(
    candidate: dict, champion: dict | None, policy: GatePolicy, gold_size: int, new_classes: list[str] | None = None
) -> GateResult:
    """`candidate` and `champion` are learning.metrics.EvaluationReport.to_dict() outputs on the
    same gold snapshot (with `per_site` reports where the gold set has them); champion is None for
    the first model (only absolute rules apply).

    Floors are a ratchet: a floor the champion misses too does not block a candidate that is
    better on it and no worse on every other rule; a floor the champion meets always blocks. A
    class with fewer than `min_class_gold` gold images is still being learned: its floor waits.

    `new_classes` are classes the candidate predicts and the champion does not know. A new class
    takes its images from the classes it was confused with, so the champion's per-class figures for
    those were inflated: per-class drops are then reported, not blocking, while accuracy, macro
    AUC, calibration and every floor the champion meets still hold the candidate."""
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
        checks.append(_floor_check(name, floor, candidate, champion, policy.min_class_gold))
    if champion is not None:
        for metric, allowed in policy.max_drop.items():
            found = _drop_checks(metric, allowed, candidate, champion)
            checks.extend(_grace(found) if new_classes and metric in PER_CLASS_METRICS else found)
        checks.extend(_site_checks(candidate, champion, policy))
    return GateResult(all(c.passed for c in checks), checks)


def _floor_check(name: str, floor: float, candidate: dict, champion: dict | None, min_class_gold: int) -> Check:
    key = metric_key("sensitivity", name)
    values = candidate["per_class"].get(name, {})
    value, support = values.get("sensitivity"), int(values.get("support", 0) or 0)
    if support < min_class_gold:
        return Check(
            "min_sensitivity",
            key,
            value,
            floor,
            True,
            f"{name} is still being learned: {support} of {min_class_gold} adjudicated gold images; "
            "its floor applies once there are enough",
            "learning",
        )
    if value is not None and value >= floor:
        return Check(
            "min_sensitivity",
            key,
            value,
            floor,
            True,
            f"sensitivity for {name} is {_fmt(value)}; the floor is {floor:.3f}",
            "met",
        )
    theirs = champion["per_class"].get(name, {}).get("sensitivity") if champion else None
    if value is not None and theirs is not None and theirs < floor and value > theirs:
        return Check(
            "min_sensitivity",
            key,
            value,
            floor,
            True,
            f"sensitivity for {name} is {_fmt(value)}, better than the champion's {theirs:.3f} "
            f"but below the clinical floor of {floor:.3f}",
            "below_floor",
        )
    why = (
        f"; the champion meets it ({theirs:.3f})"
        if theirs is not None and theirs >= floor
        else f"; the champion has {theirs:.3f}"
        if theirs is not None
        else ""
    )
    return Check(
        "min_sensitivity",
        key,
        value,
        floor,
        False,
        f"sensitivity for {name} is {_fmt(value)}; the floor is {floor:.3f}{why}",
        "missed",
    )


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


def _site_checks(candidate: dict, champion: dict, policy: GatePolicy) -> list[Check]:
    """Per site with enough gold images: no metric may drop by more than max_drop there either,
    so improving a new site never silently costs an old one."""
    checks = []
    theirs_by_site = champion.get("per_site") or {}
    for site, mine in (candidate.get("per_site") or {}).items():
        theirs = theirs_by_site.get(site)
        if theirs is None or mine.get("n", 0) < max(policy.min_site_gold, 1):
            continue
        for metric in ("accuracy", "macro_auc"):
            allowed = policy.max_drop.get(metric)
            if allowed is None:
                continue
            for found in _drop_checks(metric, allowed, mine, theirs):
                checks.append(
                    Check(
                        "site_drop",
                        f"{found.metric}@{site}",
                        found.value,
                        found.threshold,
                        found.passed,
                        f"site {site}: {found.message}",
                    )
                )
    return checks


def _drop_checks(metric: str, allowed: float, candidate: dict, champion: dict) -> list[Check]:
    if metric in PER_CLASS_METRICS:
        pairs = [
            (metric_key(metric, name), values.get(metric), champion["per_class"].get(name, {}).get(metric))
            for name, values in candidate["per_class"].items()
        ]
    else:
        pairs = [(metric, candidate.get(metric), champion.get(metric))]
    checks = []
    for label, mine, theirs in pairs:
        if theirs is None:
            continue  # the champion has no value to hold the candidate to
        if metric in LOWER_IS_BETTER:
            limit = theirs + allowed
            ok = mine is not None and mine <= limit
            message = f"{label} rose to {_fmt(mine)} from {theirs:.3f}; at most {limit:.3f} is allowed"
        else:
            limit = theirs - allowed
            ok = mine is not None and mine >= limit
            message = f"{label} fell to {_fmt(mine)} from {theirs:.3f}; at least {limit:.3f} is needed"
        checks.append(Check("max_drop", label, mine, limit, ok, message))
    return checks


def auto_promotion_allowed(
    gate_passed: bool,
    candidate: dict,
    champion: dict | None,
    auto: AutoPromotion,
    agreement: float | None,
    below_floor: list[str] | None = None,
) -> tuple[bool, str]:
    """Promote without an engineer only when config allows it, the gate passed with every floor
    met, the candidate beats the champion by a margin, and doctors recently agreed with the model."""
    if not auto.enabled:
        return False, "auto-promotion is off"
    if not gate_passed:
        return False, "the gate failed"
    if below_floor:
        return False, f"below the clinical floor for {', '.join(below_floor)}: an engineer decides"
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
