"""Every alias write: a new candidate, the first champion, and the moves of promotion and rollback
(planned first, then applied in a crash-safe order, with the versions tagged). Nothing else in the
product calls Registry.set_alias or clear_alias."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass

from registry.client import Registry
from registry.uris import CANDIDATE, CHAMPION, PREVIOUS


class PromotionError(ValueError):
    pass


@dataclass(frozen=True)
class AliasChange:
    """One alias move, planned before any write so that it can be recorded as an intent first
    and finished later from that record alone."""

    action: str  # promote | rollback
    champion_before: int | None
    champion_after: int
    previous_after: int | None  # None: no `previous` afterwards
    clear_candidate: bool

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AliasChange":
        return cls(**data)


Step = Callable[[str], None]  # called after each step with its name (tests crash here)


def nominate(registry: Registry, version: int) -> None:
    """A newly trained version becomes the candidate, for the gate to measure."""
    registry.set_alias(CANDIDATE, version)


def bootstrap(registry: Registry, version: int) -> None:
    """The very first model serves at once: there is no champion to compare it with or keep as previous."""
    registry.set_alias(CHAMPION, version)


def plan_promotion(aliases: dict[str, int], version: int) -> AliasChange:
    if aliases.get(CHAMPION) == version:
        raise PromotionError(f"Version {version} is already the champion.")
    return AliasChange(
        "promote",
        aliases.get(CHAMPION),
        version,
        aliases.get(CHAMPION),
        clear_candidate=aliases.get(CANDIDATE) == version,
    )


def plan_rollback(aliases: dict[str, int], withdrawn: Collection[int] = ()) -> AliasChange:
    """Put `previous` back as champion. The withdrawn champion does not become `previous`: a second
    rollback (a double click, a concurrent loser retrying) must not undo the first, so a model a
    rollback withdrew returns as champion only through the gate. `withdrawn`: versions a rollback
    withdrew that have not been champion since, refused even when `previous` names one (as a
    rollback before this rule, or a hand-made alias move, left it)."""
    if PREVIOUS not in aliases:
        raise PromotionError("There is no previous model to roll back to.")
    if aliases[PREVIOUS] == aliases.get(CHAMPION):
        raise PromotionError(
            f"Version {aliases[PREVIOUS]} is both champion and previous: an alias change is unfinished."
        )
    if aliases[PREVIOUS] in withdrawn:
        raise PromotionError(
            f"A rollback withdrew v{aliases[PREVIOUS]}: it returns as champion through the gate, never by a rollback."
        )
    return AliasChange(
        "rollback",
        aliases.get(CHAMPION),
        aliases[PREVIOUS],
        None,
        clear_candidate=aliases.get(CANDIDATE) == aliases[PREVIOUS],
    )


def withdrawn(registry: Registry) -> set[int]:
    """Versions whose last alias change was being withdrawn by a rollback (the tag apply() writes);
    one promoted again since carries that promotion's tag instead."""
    return {info.version for info in registry.versions() if info.tags.get("last_alias_change") == "rolled_back"}


def apply(registry: Registry, change: AliasChange, after_step: Step | None = None) -> None:
    """Idempotent steps, ordered so that a crash between any two leaves exactly one champion:
    `previous` first (the old champion still serves), then the one write that switches serving,
    then the clean-up. Re-running a half-done change finishes it."""
    steps: list[tuple[str, Callable[[], None]]] = []
    previous = change.previous_after
    if previous is not None:
        steps.append(("previous", lambda: registry.set_alias(PREVIOUS, previous)))
    steps.append(("champion", lambda: registry.set_alias(CHAMPION, change.champion_after)))
    if change.previous_after is None:
        steps.append(("previous", lambda: clear_if(registry, PREVIOUS, change.champion_after)))
    if change.clear_candidate:
        steps.append(("candidate", lambda: clear_if(registry, CANDIDATE, change.champion_after)))
    steps.append(("tags", lambda: _tag(registry, change)))
    for name, step in steps:
        step()
        if after_step is not None:
            after_step(name)


def _tag(registry: Registry, change: AliasChange) -> None:
    registry.set_tags(
        change.champion_after, {"last_alias_change": change.action, "replaced": _text(change.champion_before)}
    )
    if change.champion_before is not None:
        gone = "rolled_back" if change.action == "rollback" else "superseded"
        registry.set_tags(
            change.champion_before, {"last_alias_change": gone, "replaced_by": str(change.champion_after)}
        )


def _text(version: int | None) -> str:
    return "none" if version is None else str(version)


def clear_if(registry: Registry, alias: str, version: int) -> None:
    """Remove `alias` only while it still names `version` (a later move stands)."""
    if registry.version_for(alias) == version:
        registry.clear_alias(alias)
