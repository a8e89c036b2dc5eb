"""Gate runs, decisions, promotion, rollback and crash recovery against a real temp MLflow store."""

from datetime import timedelta

import pytest
from flask import current_app

from registry import aliases
from tests.conftest import (
    PowerCut,
    aliases_applied,
    change_settings,
    race,
    registry_of,
    user,
    version_info,
)
from webapp import labelstore
from webapp.approvals import DecisionError, decisions, gate_run, history, recovery
from webapp.audit import Actor
from webapp.extensions import db
from webapp.gold import snapshots
from webapp.models import AuditEvent, GateReport, Label, TrainingRun, User


def test_gate_report_is_stored_in_db_and_on_the_model_version(candidate_app):
    report = db.session.execute(db.select(GateReport).filter_by(model_version=2)).scalar_one()
    assert (report.model_version, report.champion_version, report.snapshot.size) == (2, 1, 8)
    assert report.candidate_metrics["n"] == 8 and report.champion_metrics["n"] == 8
    assert report.result["passed"] == report.passed
    assert len(report.snapshot.content_hash) == 64
    info = version_info(registry_of(candidate_app), 2)
    assert info.tags["gate_passed"] == str(report.passed)
    assert info.tags["gold_snapshot"] == report.snapshot.content_hash
    run = registry_of(candidate_app).client.get_run(info.run_id)
    assert "gold_accuracy" in run.data.metrics
    artifacts = [a.path for a in registry_of(candidate_app).client.list_artifacts(info.run_id, "gate")]
    assert any(path.endswith(".png") for path in artifacts)
    gate_events = db.session.execute(db.select(AuditEvent).filter_by(kind="gate")).scalars().all()
    assert [e.model_version for e in gate_events] == [1, 2]  # the first model is measured too
    training = db.session.execute(db.select(TrainingRun).filter_by(model_version=2)).scalar_one()
    assert "gold_macro_auc_delta" in training.metrics


def test_same_gold_set_gives_the_same_snapshot(candidate_app):
    first, _ = snapshots.freeze_gold()
    second, _ = snapshots.freeze_gold()
    assert first.id == second.id


def test_promotion_moves_aliases_and_records_who_and_why(candidate_app):
    engineer = user("engineer")
    decisions.decide(2, engineer, approve=True, reason="better on gold", override=True)
    assert registry_of(candidate_app).aliases() == {"champion": 2, "previous": 1}
    events = history.history()
    kinds = [(e.kind, e.actor_name, e.model_version) for e in events]
    assert ("promotion", "engineer", 2) in kinds and ("approval", "engineer", 2) in kinds


def test_failed_gate_needs_an_override(candidate_app):
    report = db.session.execute(db.select(GateReport).filter_by(model_version=2)).scalar_one()
    report.passed = False
    db.session.commit()
    with pytest.raises(DecisionError, match="override"):
        decisions.decide(2, user("engineer"), approve=True, reason="looks fine")
    event = decisions.decide(2, user("engineer"), approve=True, reason="known label noise", override=True)
    assert event.override is True
    assert registry_of(candidate_app).aliases()["champion"] == 2


def test_reject_clears_candidate(candidate_app):
    decisions.decide(2, user("engineer"), approve=False, reason="worse on normals")
    assert registry_of(candidate_app).aliases() == {"champion": 1}
    with pytest.raises(DecisionError):
        decisions.decide(2, user("engineer"), approve=True, reason="changed my mind", override=True)


def test_two_approvals_at_once_make_one_promotion(candidate_app):
    def approve(name):
        decisions.decide(2, user(name), approve=True, reason=f"{name} approves", override=True)
        return "promoted"

    outcomes = race(candidate_app, approve, ["engineer", "admin"])
    assert sorted((o.status if isinstance(o, DecisionError) else o for o in outcomes), key=str) == [409, "promoted"]
    done = [e for e in history.history() if e.kind == "promotion" and e.model_version == 2]
    assert len(done) == 1
    assert registry_of(candidate_app).aliases() == {"champion": 2, "previous": 1}


def test_rollback_restores_previous_and_is_recorded(candidate_app):
    decisions.decide(2, user("engineer"), approve=True, reason="ok", override=True)
    decisions.rollback(user("engineer"), "doctors report misses")
    assert registry_of(candidate_app).aliases() == {"champion": 1}
    last = history.history()[0]
    assert (last.kind, last.model_version, last.from_version, last.reason) == (
        "rollback",
        1,
        2,
        "doctors report misses",
    )
    with pytest.raises(DecisionError):
        decisions.rollback(user("engineer"), "")


def test_crash_between_alias_steps_is_finished_on_next_start(candidate_app):
    registry = registry_of(candidate_app)
    change = aliases.plan_promotion(registry.aliases(), 2)

    def crash(step):
        if step == "previous":
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        decisions.change_aliases(change, Actor("engineer"), "approved before the crash", after_step=crash)
    # mid-way: previous is set, the champion has not moved yet; still exactly one champion
    assert registry.aliases()["champion"] == 1
    assert [e for e in history.history() if e.kind == "promotion" and e.model_version == 2] == []
    assert recovery.reconcile()
    assert registry.aliases() == {"champion": 2, "previous": 1}
    recovered = [e for e in history.history() if e.kind == "promotion" and e.model_version == 2]
    assert len(recovered) == 1 and recovered[0].details["recovered"] is True
    assert recovery.reconcile() == []  # nothing left to finish


def test_crash_after_champion_switch_is_finished(candidate_app):
    registry = registry_of(candidate_app)
    change = aliases.plan_promotion(registry.aliases(), 2)

    def crash(step):
        if step == "champion":
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        decisions.change_aliases(change, Actor("engineer"), "approved", after_step=crash)
    assert registry.aliases()["champion"] == 2 and registry.aliases()["candidate"] == 2
    recovery.reconcile()
    assert registry.aliases() == {"champion": 2, "previous": 1}
    assert aliases_applied(registry, change)


def test_auto_promotion_when_config_allows_it(trained_app):
    from tests.conftest import seed_gold
    from webapp.training import runs

    change_settings(
        trained_app,
        {
            "gate": {
                "min_sensitivity": {},
                "max_drop": {},
                "auto_promote": {"enabled": True, "min_margin": -1.0, "min_agreement": 0.0},
            }
        },
    )
    seed_gold(8)
    db.session.add(Label(image_id=1, user_id=user("doctor").id, label="normal", agreed=True))
    db.session.commit()
    run = runs.run(runs.enqueue("test"))
    assert run.status == "succeeded", run.error
    assert registry_of(trained_app).aliases() == {"champion": 2, "previous": 1}
    approval = next(e for e in history.history() if e.kind == "approval")
    assert approval.automatic and approval.actor_name == "system" and approval.reason.startswith("Automatic")


# --- fast: tiny untrained models registered straight into a real temp MLflow store ---------------


def test_gate_on_two_tiny_models_is_stored_everywhere(gated):
    report = gate_run.latest_report(2)
    assert (report.champion_version, report.snapshot.size, report.candidate_metrics["n"]) == (1, 8, 8)
    assert set(report.result) >= {"passed", "failures", "checks"}
    assert {f["image_id"] for f in report.flipped} <= {item[0] for item in report.snapshot.items}
    # the flipped list is exactly the gold images the two versions predict differently
    examples = labelstore.gold_examples(current_app.extensions["medal"].store)
    candidate = gate_run.evaluate_version(2, examples).predicted
    champion = gate_run.evaluate_version(1, examples).predicted
    expected = {image_id for image_id in candidate if candidate[image_id] != champion[image_id]}
    assert {f["image_id"] for f in report.flipped} == expected
    for flip in report.flipped:
        assert (flip["candidate"], flip["champion"]) == (candidate[flip["image_id"]], champion[flip["image_id"]])
    tags = version_info(gated, 2).tags
    assert tags["gate_passed"] == str(report.passed) and tags["gold_snapshot"] == report.snapshot.content_hash
    metrics = gated.client.get_run(version_info(gated, 2).run_id).data.metrics
    assert {"gold_accuracy", "gold_ece", "gold_sensitivity_normal"} <= set(metrics)
    event = history.history()[0]
    assert (event.kind, event.model_version, event.from_version) == ("gate", 2, 1)


def test_a_killed_promotion_is_finished_by_reconcile_and_blocks_others_meanwhile(gated):
    def kill(step):
        if step == "champion":
            raise PowerCut

    with pytest.raises(PowerCut):
        decisions.decide(2, user("engineer"), approve=True, reason="better", override=True, after_step=kill)
    db.session.rollback()
    assert gated.aliases()["champion"] == 2 and gated.aliases()["candidate"] == 2  # half done
    # the dead process still holds the lock: nobody else moves aliases until it is finished
    with pytest.raises(DecisionError, match="in progress"):
        decisions.rollback(user("admin"), "too early")
    assert recovery.reconcile() == []  # lease not expired yet
    assert len(recovery.reconcile(stale_after=timedelta(0))) == 1  # the next start, later
    assert gated.aliases() == {"champion": 2, "previous": 1}
    kinds = [(e.kind, e.model_version) for e in reversed(history.history())]
    assert kinds[-2:] == [("approval", 2), ("promotion", 2)]
    assert history.history()[0].details["recovered"] is True
    assert gate_run.latest_report(2).decision == "approved"
    decisions.rollback(user("admin"), "works again")  # the lock was released
    assert gated.aliases() == {"champion": 1}


def test_an_intent_overtaken_by_a_hand_made_alias_move_is_abandoned_not_applied(gated):
    change = aliases.plan_promotion(gated.aliases(), 2)

    def kill(step):
        raise PowerCut

    with pytest.raises(PowerCut):
        decisions.change_aliases(change, Actor("engineer"), "approved", after_step=kill)
    db.session.rollback()
    gated.set_alias("champion", 3)  # someone moved the alias in the MLflow UI meanwhile
    assert len(recovery.reconcile(stale_after=timedelta(0))) == 1
    assert gated.aliases()["champion"] == 3
    last = history.history()[0]
    assert last.details["phase"] == "abandoned" and last.details["champion_found"] == 3


def test_two_rollbacks_at_once_roll_back_once(gated):
    decisions.decide(2, user("engineer"), approve=True, reason="ok", override=True)

    def roll(name):
        decisions.rollback(user(name), f"{name} saw misses", expected_champion=2)
        return "rolled back"

    outcomes = race(current_app._get_current_object(), roll, ["engineer", "admin"])
    assert sorted((o.status if isinstance(o, DecisionError) else o for o in outcomes), key=str) == [409, "rolled back"]
    assert gated.aliases() == {"champion": 1}
    assert len([e for e in history.history() if e.kind == "rollback"]) == 1


def test_engineers_rolling_back_at_once_without_expected_champion_roll_back_once(gated):
    decisions.decide(2, user("engineer"), approve=True, reason="ok", override=True)
    names = ["engineer", "admin", "engineer2", "admin2"]
    for name in names[2:]:
        row = User(username=name, role=name.rstrip("2"))
        row.set_password("pass-word")
        db.session.add(row)
    db.session.commit()

    def roll(name):
        decisions.rollback(user(name), f"{name} saw misses")
        return "rolled back"

    outcomes = race(current_app._get_current_object(), roll, names)
    refused = [o for o in outcomes if isinstance(o, DecisionError)]
    assert outcomes.count("rolled back") == 1 and len(refused) == 3, outcomes
    # no loser is invited to try again: trying again could only roll the rollback back
    assert all(o.status == 409 and "try again" not in str(o) for o in refused), refused
    assert gated.aliases() == {"champion": 1}
    rollbacks = [e for e in history.history() if e.kind == "rollback"]
    assert len(rollbacks) == 1 and rollbacks[0].model_version == 1
    with pytest.raises(DecisionError, match="withdrew v2"):
        decisions.rollback(user("admin"), "retried after the 409")
    assert gated.aliases() == {"champion": 1}


def test_approving_after_the_champion_changed_needs_a_fresh_gate(gated):
    gated.set_alias("previous", 3)
    decisions.rollback(user("engineer"), "v1 misses")  # champion is now v3
    with pytest.raises(DecisionError, match="run the gate again"):
        decisions.decide(2, user("engineer"), approve=True, reason="ok", override=True)
    assert gate_run.run_gate(2).champion_version == 3
    decisions.decide(2, user("engineer"), approve=True, reason="ok", override=True)
    assert gated.aliases() == {"champion": 2, "previous": 3}


def test_auto_promotion_when_policy_allows_is_recorded_as_automatic(app, tiny):
    from tests.conftest import seed_gold, seed_pool

    seed_gold(8)
    image_id = seed_pool(1, seed=77)[0]
    db.session.add(Label(image_id=image_id, user_id=user("doctor").id, label="normal", agreed=True))
    db.session.commit()
    change_settings(
        app,
        {
            "gate": {
                "min_gold_size": 1,
                "min_sensitivity": {},
                "max_drop": {},
                "auto_promote": {"enabled": True, "min_margin": -1.0, "min_agreement": 0.5},
            }
        },
    )
    tiny.set_alias("candidate", 2)
    decisions.on_candidate(2)
    assert tiny.aliases() == {"champion": 2, "previous": 1}
    promoted = next(e for e in history.history() if e.kind == "promotion")
    assert promoted.automatic and promoted.actor_name == "system" and promoted.reason.startswith("Automatic")


def test_auto_promotion_off_by_default_leaves_the_candidate_waiting(gated):
    assert gated.aliases() == {"champion": 1, "candidate": 2}
    assert gate_run.latest_report(2).decision is None


def test_the_gate_runs_the_gold_films_trunk_once_and_agrees_with_the_whole_network(gated):
    """The gate reads the gold films' trunk activations from the store rounds keep (the run above
    stored them), and its probabilities are the whole network's up to float16 storage."""
    import numpy as np

    from learning.predict import score_pool
    from learning.trunk import activations, split
    from webapp.services import services
    from webapp.training import recipe

    settings = services().settings
    store, frozen = recipe.activation_store(settings), settings.training.round.frozen_blocks
    examples = labelstore.gold_examples(current_app.extensions["medal"].store)
    paths = [example.path for example in examples]
    for version in (1, 2):
        net = gated.load(version)
        stored = activations(split(net, frozen), paths, store)
        assert stored.computed == 0  # the gate's run stored every gold film's activations for this trunk
        whole = score_pool(net, paths).probabilities
        gate = gate_run.evaluate_version(version, examples).probabilities
        np.testing.assert_allclose(gate, whole, atol=5e-3)
