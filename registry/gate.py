"""The validation gate, pure: candidate and champion metrics plus a policy in, a verdict with reasons out."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

PER_CLASS = ("sensitivity", "specificity", "precision", "f1")
LOWER_IS_BETTER = ("ece",)


@dataclass(frozen=True)
class GatePolicy:
    min_gold_size: int
    min_sensitivity: dict[str, float] = field(default_factory=dict)   # per class
    max_drop: dict[str, float] = field(default_factory=dict)          # per metric, against champion

    @classmethod
    def from_config(cls, gate: dict) -> "GatePolicy":
        return cls(min_gold_size=int(gate.get("min_gold_size", 0)),
                   min_sensitivity={k: float(v) for k, v in (gate.get("min_sensitivity") or {}).items()},
                   max_drop={k: float(v) for k, v in (gate.get("max_drop") or {}).items()})


@dataclass(frozen=True)
class Check:
    rule: str          # gold_size | min_sensitivity | max_drop
    metric: str
    value: float | None
    threshold: float | None
    passed: bool
    message: str


@dataclass(frozen=True)
class GateResult:
    passed: bool
    checks: list[Check]

    @property
    def failures(self) -> list[str]:
        return [check.message for check in self.checks if not check.passed]

    def to_dict(self) -> dict:
        return {"passed": self.passed, "failures": self.failures,
                "checks": [asdict(check) for check in self.checks]}


def check(candidate: dict, champion: dict | None, policy: GatePolicy, gold_size: int) -> GateResult:
    """`candidate` and `champion` are learning.metrics.EvaluationReport.to_dict() outputs on the
    same gold snapshot; champion is None for the first model (only absolute rules apply)."""
    checks = [Check("gold_size", "n", float(gold_size), float(policy.min_gold_size),
                    gold_size >= policy.min_gold_size,
                    f"gold set has {gold_size} images; the policy needs at least {policy.min_gold_size}")]
    for name, floor in policy.min_sensitivity.items():
        value = candidate["per_class"].get(name, {}).get("sensitivity")
        ok = value is not None and value >= floor
        checks.append(Check("min_sensitivity", f"sensitivity_{name}", value, floor, ok,
                            f"sensitivity for {name} is {_fmt(value)}; the floor is {floor:.3f}"))
    if champion is not None:
        for metric, allowed in policy.max_drop.items():
            checks.extend(_drop_checks(metric, allowed, candidate, champion))
    return GateResult(all(c.passed for c in checks), checks)


def _drop_checks(metric: str, allowed: float, candidate: dict, champion: dict) -> list[Check]:
    if metric in PER_CLASS:
        pairs = [(f"{metric}_{name}", values.get(metric), champion["per_class"].get(name, {}).get(metric))
                 for name, values in candidate["per_class"].items()]
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


def auto_promotion_allowed(gate_passed: bool, candidate: dict, champion: dict | None, auto: dict,
                           agreement: float | None) -> tuple[bool, str]:
    """Promote without an engineer only when config allows it, the gate passed, the candidate
    beats the champion by a margin, and doctors recently agreed with the model."""
    if not auto.get("enabled"):
        return False, "auto-promotion is off"
    if not gate_passed:
        return False, "the gate failed"
    margin = float(auto.get("min_margin", 0.0))
    mine = candidate.get("macro_auc")
    theirs = champion.get("macro_auc") if champion else None
    if mine is None or (theirs is not None and mine < theirs + margin):
        return False, f"macro AUC {_fmt(mine)} is not {margin:.3f} above the champion's {_fmt(theirs)}"
    floor = float(auto.get("min_agreement", 1.0))
    if agreement is None or agreement < floor:
        return False, f"recent model-doctor agreement {_fmt(agreement)} is below {floor:.2f}"
    return True, (f"gate passed, macro AUC {mine:.3f} vs {_fmt(theirs)}, "
                  f"agreement {agreement:.2f}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
