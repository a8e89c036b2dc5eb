"""Promotion and rollback: move the aliases in a crash-safe order, tag the versions, say what changed."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

from registry.client import Registry
from registry.uris import CANDIDATE, CHAMPION, PREVIOUS


class PromotionError(ValueError):
    pass


@dataclass(frozen=True)
class AliasChange:
    """One alias move, planned before any write so that it can be recorded as an intent first
    and finished later from that record alone."""

    action: str                    # promote | rollback
    champion_before: int | None
    champion_after: int
    previous_after: int | None     # None: no `previous` afterwards
    clear_candidate: bool

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AliasChange":
        return cls(**data)


Step = Callable[[str], None]          # called after each step with its name (tests crash here)
Intent = Callable[[AliasChange], None]  # called once the change is planned, before any write


def plan_promotion(aliases: dict[str, int], version: int) -> AliasChange:
    if aliases.get(CHAMPION) == version:
        raise PromotionError(f"Version {version} is already the champion.")
    return AliasChange("promote", aliases.get(CHAMPION), version, aliases.get(CHAMPION),
                       clear_candidate=aliases.get(CANDIDATE) == version)


def plan_rollback(aliases: dict[str, int]) -> AliasChange:
    if PREVIOUS not in aliases:
        raise PromotionError("There is no previous model to roll back to.")
    if aliases[PREVIOUS] == aliases.get(CHAMPION):
        raise PromotionError(f"Version {aliases[PREVIOUS]} is both champion and previous: "
                             "an alias change is unfinished.")
    # the rolled-back model becomes `previous`, so a second rollback undoes the first
    return AliasChange("rollback", aliases.get(CHAMPION), aliases[PREVIOUS], aliases.get(CHAMPION),
                       clear_candidate=aliases.get(CANDIDATE) == aliases[PREVIOUS])


def promote(registry: Registry, version: int, *, intent: Intent | None = None,
            after_step: Step | None = None) -> AliasChange:
    """`champion` to `version`, `previous` to the old champion, `candidate` cleared."""
    change = plan_promotion(registry.aliases(), version)
    if intent is not None:
        intent(change)
    apply(registry, change, after_step)
    return change


def rollback(registry: Registry, *, intent: Intent | None = None,
             after_step: Step | None = None) -> AliasChange:
    """`champion` back to `previous`; the model rolled back from becomes `previous`."""
    change = plan_rollback(registry.aliases())
    if intent is not None:
        intent(change)
    apply(registry, change, after_step)
    return change


def apply(registry: Registry, change: AliasChange, after_step: Step | None = None) -> None:
    """Idempotent steps, ordered so that a crash between any two leaves exactly one champion:
    `previous` first (the old champion still serves), then the one write that switches serving,
    then the clean-up. Re-running a half-done change finishes it."""
    steps: list[tuple[str, Callable[[], None]]] = []
    if change.previous_after is not None:
        steps.append(("previous", lambda: registry.set_alias(PREVIOUS, change.previous_after)))
    steps.append(("champion", lambda: registry.set_alias(CHAMPION, change.champion_after)))
    if change.previous_after is None:
        steps.append(("previous", lambda: _clear_if(registry, PREVIOUS, change.champion_after)))
    if change.clear_candidate:
        steps.append(("candidate", lambda: _clear_if(registry, CANDIDATE, change.champion_after)))
    steps.append(("tags", lambda: _tag(registry, change)))
    for name, step in steps:
        step()
        if after_step is not None:
            after_step(name)


def _tag(registry: Registry, change: AliasChange) -> None:
    registry.set_tags(change.champion_after, {"last_alias_change": change.action,
                                              "replaced": _text(change.champion_before)})
    if change.champion_before is not None:
        gone = "rolled_back" if change.action == "rollback" else "superseded"
        registry.set_tags(change.champion_before, {"last_alias_change": gone,
                                                   "replaced_by": str(change.champion_after)})


def _text(version: int | None) -> str:
    return "none" if version is None else str(version)


def _clear_if(registry: Registry, alias: str, version: int) -> None:
    if registry.version_for(alias) == version:
        registry.clear_alias(alias)


def is_applied(registry: Registry, change: AliasChange) -> bool:
    aliases = registry.aliases()
    done = aliases.get(CHAMPION) == change.champion_after
    if change.previous_after is not None:
        done = done and aliases.get(PREVIOUS) == change.previous_after
    else:
        done = done and aliases.get(PREVIOUS) != change.champion_after
    if change.clear_candidate:
        done = done and aliases.get(CANDIDATE) != change.champion_after
    return done
