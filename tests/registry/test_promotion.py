"""Gate runs, promotion, rollback and crash recovery against a real temp MLflow store."""
import threading
from datetime import timedelta

import pytest
from flask import current_app

from registry import promotion as aliases
from webapp import promotion
from webapp.extensions import db
from webapp.models import AuditEvent, GateReport, Label, TrainingRun, User


def _user(name):
    return db.session.execute(db.select(User).filter_by(username=name)).scalar_one()


def _registry(app):
    return app.extensions["medal"].registry


def test_gate_report_is_stored_in_db_and_on_the_model_version(candidate_app):
    report = db.session.execute(db.select(GateReport).filter_by(model_version=2)).scalar_one()
    assert (report.model_version, report.champion_version, report.snapshot.size) == (2, 1, 8)
    assert report.candidate_metrics["n"] == 8 and report.champion_metrics["n"] == 8
    assert report.result["passed"] == report.passed
    assert len(report.snapshot.content_hash) == 64
    info = _registry(candidate_app).version(2)
    assert info.tags["gate_passed"] == str(report.passed)
    assert info.tags["gold_snapshot"] == report.snapshot.content_hash
    run = _registry(candidate_app).client.get_run(info.run_id)
    assert "gold_accuracy" in run.data.metrics
    artifacts = [a.path for a in _registry(candidate_app).client.list_artifacts(info.run_id, "gate")]
    assert any(path.endswith(".png") for path in artifacts)
    gate_events = db.session.execute(db.select(AuditEvent).filter_by(kind="gate")).scalars().all()
    assert [e.model_version for e in gate_events] == [1, 2]  # the first model is measured too
    training = db.session.execute(db.select(TrainingRun).filter_by(model_version=2)).scalar_one()
    assert "gold_macro_auc_delta" in training.metrics


def test_same_gold_set_gives_the_same_snapshot(candidate_app):
    first, _ = promotion.freeze_gold()
    second, _ = promotion.freeze_gold()
    assert first.id == second.id


def test_promotion_moves_aliases_and_records_who_and_why(candidate_app):
    engineer = _user("engineer")
    promotion.decide(2, engineer, approve=True, reason="better on gold", override=True)
    assert _registry(candidate_app).aliases() == {"champion": 2, "previous": 1}
    history = promotion.history()
    kinds = [(e.kind, e.actor_name, e.model_version) for e in history]
    assert ("promotion", "engineer", 2) in kinds and ("approval", "engineer", 2) in kinds


def test_failed_gate_needs_an_override(candidate_app):
    report = db.session.execute(db.select(GateReport).filter_by(model_version=2)).scalar_one()
    report.passed = False
    db.session.commit()
    with pytest.raises(promotion.DecisionError, match="override"):
        promotion.decide(2, _user("engineer"), approve=True, reason="looks fine")
    event = promotion.decide(2, _user("engineer"), approve=True, reason="known label noise", override=True)
    assert event.override is True
    assert _registry(candidate_app).aliases()["champion"] == 2


def test_reject_clears_candidate(candidate_app):
    promotion.decide(2, _user("engineer"), approve=False, reason="worse on normals")
    assert _registry(candidate_app).aliases() == {"champion": 1}
    with pytest.raises(promotion.DecisionError):
        promotion.decide(2, _user("engineer"), approve=True, reason="changed my mind", override=True)


def test_two_approvals_at_once_make_one_promotion(candidate_app):
    outcomes = []

    def approve(name):
        with candidate_app.app_context():
            try:
                promotion.decide(2, _user(name), approve=True, reason=f"{name} approves", override=True)
                outcomes.append("promoted")
            except promotion.DecisionError as error:
                outcomes.append(error.status)

    threads = [threading.Thread(target=approve, args=(name,)) for name in ("engineer", "admin")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=str) == [409, "promoted"]
    done = [e for e in promotion.history() if e.kind == "promotion" and e.model_version == 2]
    assert len(done) == 1
    assert _registry(candidate_app).aliases() == {"champion": 2, "previous": 1}


def test_rollback_restores_previous_and_is_recorded(candidate_app):
    promotion.decide(2, _user("engineer"), approve=True, reason="ok", override=True)
    promotion.rollback(_user("engineer"), "doctors report misses")
    assert _registry(candidate_app).aliases() == {"champion": 1, "previous": 2}
    last = promotion.history()[0]
    assert (last.kind, last.model_version, last.from_version, last.reason) == ("rollback", 1, 2, "doctors report misses")
    with pytest.raises(promotion.DecisionError):
        promotion.rollback(_user("engineer"), "")


def test_crash_between_alias_steps_is_finished_on_next_start(candidate_app):
    registry = _registry(candidate_app)
    change = aliases.plan_promotion(registry.aliases(), 2)

    def crash(step):
        if step == "previous":
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        promotion._change(change, "engineer", None, "approved before the crash", after_step=crash)
    # mid-way: previous is set, the champion has not moved yet; still exactly one champion
    assert registry.aliases()["champion"] == 1
    assert [e for e in promotion.history() if e.kind == "promotion" and e.model_version == 2] == []
    assert promotion.reconcile()
    assert registry.aliases() == {"champion": 2, "previous": 1}
    recovered = [e for e in promotion.history() if e.kind == "promotion" and e.model_version == 2]
    assert len(recovered) == 1 and recovered[0].details["recovered"] is True
    assert promotion.reconcile() == []  # nothing left to finish


def test_crash_after_champion_switch_is_finished(candidate_app):
    registry = _registry(candidate_app)
    change = aliases.plan_promotion(registry.aliases(), 2)

    def crash(step):
        if step == "champion":
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        promotion._change(change, "engineer", None, "approved", after_step=crash)
    assert registry.aliases()["champion"] == 2 and registry.aliases()["candidate"] == 2
    promotion.reconcile()
    assert registry.aliases() == {"champion": 2, "previous": 1}
    assert aliases.is_applied(registry, change)


def test_auto_promotion_when_config_allows_it(trained_app):
    from tests.conftest import seed_gold
    from webapp import finetune

    gate = trained_app.config["MEDAL"]["gate"]
    gate["min_sensitivity"] = {}
    gate["max_drop"] = {}
    gate["auto_promote"] = {"enabled": True, "min_margin": -1.0, "min_agreement": 0.0}
    seed_gold(8)
    db.session.add(Label(image_id=1, user_id=_user("doctor").id, label="normal", agreed=True))
    db.session.commit()
    run = finetune.run(finetune.enqueue("test"))
    assert run.status == "succeeded", run.error
    assert _registry(trained_app).aliases() == {"champion": 2, "previous": 1}
    approval = next(e for e in promotion.history() if e.kind == "approval")
    assert approval.automatic and approval.actor_name == "system" and approval.reason.startswith("Automatic")


# --- fast: tiny untrained models registered straight into a real temp MLflow store ---------------

class PowerCut(BaseException):
    """Not an Exception: nothing in the code under test catches it, like a killed process."""


def _register_tiny(registry, seed: int) -> int:
    import torch

    from learning.model import ModelSpec, XrayNet
    from registry.client import RunRecord

    torch.manual_seed(seed)
    net = XrayNet(ModelSpec("small_cnn", ["normal", "pneumonia"], 32), pretrained=False).eval()
    run_id = registry.log_run(net, RunRecord(params={"seed": seed}), run_name=f"tiny-{seed}")
    return registry.register(run_id)


@pytest.fixture
def tiny(app):
    """Versions 1-3 registered; v1 champion; nothing gated yet."""
    registry = _registry(app)
    versions = [_register_tiny(registry, seed) for seed in (1, 2, 3)]
    assert versions == [1, 2, 3]
    registry.set_alias("champion", 1)
    return registry


@pytest.fixture
def gated(app, tiny):
    """A gold set, champion v1, candidate v2 through the real gate."""
    from tests.conftest import seed_gold

    seed_gold(8)
    tiny.set_alias("candidate", 2)
    promotion.on_candidate(2)
    return tiny


def test_promote_then_rollback_move_aliases_and_tag_versions(tiny):
    tiny.set_alias("candidate", 2)
    change = aliases.promote(tiny, 2)
    assert (change.champion_before, change.champion_after, change.previous_after) == (1, 2, 1)
    assert tiny.aliases() == {"champion": 2, "previous": 1}
    assert tiny.version(2).tags["last_alias_change"] == "promote"
    assert tiny.version(1).tags["replaced_by"] == "2"
    back = aliases.rollback(tiny)
    assert (back.champion_after, back.previous_after) == (1, 2)
    assert tiny.aliases() == {"champion": 1, "previous": 2}
    assert tiny.version(2).tags["last_alias_change"] == "rolled_back"
    with pytest.raises(aliases.PromotionError):
        aliases.promote(tiny, 1)  # already champion


def test_rollback_needs_a_previous_model(tiny):
    with pytest.raises(aliases.PromotionError, match="no previous"):
        aliases.rollback(tiny)


@pytest.mark.parametrize("action", ["promote", "rollback"])
def test_a_crash_after_any_step_leaves_one_champion_and_reapplying_finishes(tiny, action):
    tiny.set_alias("previous", 3)
    tiny.set_alias("candidate", 2)
    planned = aliases.plan_promotion(tiny.aliases(), 2) if action == "promote" else aliases.plan_rollback(tiny.aliases())
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
        assert aliases.is_applied(tiny, planned), crash_at


def test_gate_on_two_tiny_models_is_stored_everywhere(gated):
    report = promotion.latest_report(2)
    assert (report.champion_version, report.snapshot.size, report.candidate_metrics["n"]) == (1, 8, 8)
    assert set(report.result) >= {"passed", "failures", "checks"}
    assert {f["image_id"] for f in report.flipped} <= {item[0] for item in report.snapshot.items}
    for flip in report.flipped:
        assert flip["champion"] != flip["candidate"]
    tags = gated.version(2).tags
    assert tags["gate_passed"] == str(report.passed) and tags["gold_snapshot"] == report.snapshot.content_hash
    metrics = gated.client.get_run(gated.version(2).run_id).data.metrics
    assert {"gold_accuracy", "gold_ece", "gold_sensitivity_normal"} <= set(metrics)
    event = promotion.history()[0]
    assert (event.kind, event.model_version, event.from_version) == ("gate", 2, 1)


def test_a_killed_promotion_is_finished_by_reconcile_and_blocks_others_meanwhile(gated):
    def kill(step):
        if step == "champion":
            raise PowerCut

    with pytest.raises(PowerCut):
        promotion.decide(2, _user("engineer"), approve=True, reason="better", override=True, after_step=kill)
    db.session.rollback()
    assert gated.aliases()["champion"] == 2 and gated.aliases()["candidate"] == 2  # half done
    # the dead process still holds the lock: nobody else moves aliases until it is finished
    with pytest.raises(promotion.DecisionError, match="in progress"):
        promotion.rollback(_user("admin"), "too early")
    assert promotion.reconcile() == []                       # lease not expired yet
    assert len(promotion.reconcile(stale_after=timedelta(0))) == 1  # the next start, later
    assert gated.aliases() == {"champion": 2, "previous": 1}
    kinds = [(e.kind, e.model_version) for e in reversed(promotion.history())]
    assert kinds[-2:] == [("approval", 2), ("promotion", 2)]
    assert promotion.history()[0].details["recovered"] is True
    assert promotion.latest_report(2).decision == "approved"
    promotion.rollback(_user("admin"), "works again")       # the lock was released
    assert gated.aliases() == {"champion": 1, "previous": 2}


def test_an_intent_overtaken_by_a_hand_made_alias_move_is_abandoned_not_applied(gated):
    change = aliases.plan_promotion(gated.aliases(), 2)

    def kill(step):
        raise PowerCut

    with pytest.raises(PowerCut):
        promotion._change(change, "engineer", None, "approved", after_step=kill)
    db.session.rollback()
    gated.set_alias("champion", 3)   # someone moved the alias in the MLflow UI meanwhile
    assert len(promotion.reconcile(stale_after=timedelta(0))) == 1
    assert gated.aliases()["champion"] == 3
    last = promotion.history()[0]
    assert last.details["phase"] == "abandoned" and last.details["champion_found"] == 3


def test_two_rollbacks_at_once_roll_back_once(gated):
    promotion.decide(2, _user("engineer"), approve=True, reason="ok", override=True)
    app = current_app._get_current_object()
    outcomes = []

    def roll(name):
        with app.app_context():
            try:
                promotion.rollback(_user(name), f"{name} saw misses", expected_champion=2)
                outcomes.append("rolled back")
            except promotion.DecisionError as error:
                outcomes.append(error.status)

    threads = [threading.Thread(target=roll, args=(name,)) for name in ("engineer", "admin")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=str) == [409, "rolled back"]
    assert gated.aliases() == {"champion": 1, "previous": 2}
    assert len([e for e in promotion.history() if e.kind == "rollback"]) == 1


def test_approving_after_the_champion_changed_needs_a_fresh_gate(gated):
    gated.set_alias("previous", 3)
    promotion.rollback(_user("engineer"), "v1 misses")        # champion is now v3
    with pytest.raises(promotion.DecisionError, match="run the gate again"):
        promotion.decide(2, _user("engineer"), approve=True, reason="ok", override=True)
    assert promotion.run_gate(2).champion_version == 3
    promotion.decide(2, _user("engineer"), approve=True, reason="ok", override=True)
    assert gated.aliases() == {"champion": 2, "previous": 3}


def test_auto_promotion_when_policy_allows_is_recorded_as_automatic(app, tiny):
    from tests.conftest import seed_gold, seed_pool

    seed_gold(8)
    image_id = seed_pool(1, seed=77)[0]
    db.session.add(Label(image_id=image_id, user_id=_user("doctor").id, label="normal", agreed=True))
    db.session.commit()
    app.config["MEDAL"]["gate"].update(min_gold_size=1, min_sensitivity={}, max_drop={},
                                       auto_promote={"enabled": True, "min_margin": -1.0,
                                                     "min_agreement": 0.5})
    tiny.set_alias("candidate", 2)
    promotion.on_candidate(2)
    assert tiny.aliases() == {"champion": 2, "previous": 1}
    promoted = next(e for e in promotion.history() if e.kind == "promotion")
    assert promoted.automatic and promoted.actor_name == "system" and promoted.reason.startswith("Automatic")


def test_auto_promotion_off_by_default_leaves_the_candidate_waiting(gated):
    assert gated.aliases() == {"champion": 1, "candidate": 2}
    assert promotion.latest_report(2).decision is None
