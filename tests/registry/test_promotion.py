"""Gate runs, promotion, rollback and crash recovery against a real temp MLflow store."""
import threading

import pytest

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
