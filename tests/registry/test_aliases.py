"""The alias moves of promotion and rollback, on tiny models in a real temp MLflow store."""

import pytest

from registry import aliases
from tests.conftest import PowerCut, aliases_applied


def tags(registry, version: int) -> dict:
    return next(info.tags for info in registry.versions() if info.version == version)


def test_promote_then_rollback_move_aliases_and_tag_versions(tiny):
    tiny.set_alias("candidate", 2)
    change = aliases.plan_promotion(tiny.aliases(), 2)
    aliases.apply(tiny, change)
    assert (change.champion_before, change.champion_after, change.previous_after) == (1, 2, 1)
    assert tiny.aliases() == {"champion": 2, "previous": 1}
    assert tags(tiny, 2)["last_alias_change"] == "promote"
    assert tags(tiny, 1)["replaced_by"] == "2"
    back = aliases.plan_rollback(tiny.aliases())
    aliases.apply(tiny, back)
    assert (back.champion_after, back.previous_after) == (1, None)
    assert tiny.aliases() == {"champion": 1}  # the withdrawn v2 is not `previous`: no rollback brings it back
    assert tags(tiny, 2)["last_alias_change"] == "rolled_back"
    assert aliases.withdrawn(tiny) == {2}
    tiny.set_alias("previous", 2)  # by hand
    with pytest.raises(aliases.PromotionError, match="withdrew v2"):
        aliases.plan_rollback(tiny.aliases(), aliases.withdrawn(tiny))
    with pytest.raises(aliases.PromotionError):
        aliases.plan_promotion(tiny.aliases(), 1)  # already champion


def test_rollback_needs_a_previous_model(tiny):
    with pytest.raises(aliases.PromotionError, match="no previous"):
        aliases.plan_rollback(tiny.aliases())


@pytest.mark.parametrize("action", ["promote", "rollback"])
def test_a_crash_after_any_step_leaves_one_champion_and_reapplying_finishes(tiny, action):
    tiny.set_alias("previous", 3)
    tiny.set_alias("candidate", 2)
    planned = (
        aliases.plan_promotion(tiny.aliases(), 2) if action == "promote" else aliases.plan_rollback(tiny.aliases())
    )
    names = []
    aliases.apply(tiny, planned, after_step=names.append)
    for crash_at in names:
        tiny.set_alias("champion", 1)
        tiny.set_alias("previous", 3)
        tiny.set_alias("candidate", 2)

        def crash(step, crash_at=crash_at):
            if step == crash_at:
                raise PowerCut

        with pytest.raises(PowerCut):
            aliases.apply(tiny, planned, after_step=crash)
        assert tiny.aliases()["champion"] in (planned.champion_before, planned.champion_after), crash_at
        aliases.apply(tiny, planned)
        assert aliases_applied(tiny, planned), crash_at


def _product_sources():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for package in ("webapp", "registry", "learning", "assistant"):
        yield from sorted((root / package).rglob("*.py"))


def test_only_the_alias_module_writes_aliases():
    """Every alias write goes through registry/aliases.py (the crash-safe order, the tags); the
    registry client only offers the writes it calls."""
    allowed = {("registry", "aliases.py"), ("registry", "client.py")}
    writers = [
        f"{path.parent.name}/{path.name}"
        for path in _product_sources()
        if (path.parent.name, path.name) not in allowed
        and any(call in path.read_text() for call in (".set_alias(", ".clear_alias(", "_registered_model_alias("))
    ]
    assert writers == []


def test_nominate_and_bootstrap_set_the_one_alias_they_name(tiny):
    aliases.nominate(tiny, 2)
    assert tiny.aliases()["candidate"] == 2
    tiny.clear_alias("champion")
    aliases.bootstrap(tiny, 3)
    assert tiny.aliases() == {"candidate": 2, "champion": 3}
