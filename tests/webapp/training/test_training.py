"""Training page: live status, Train now (the web never trains), strategy setting."""

from tests.conftest import csrf_token, login
from webapp.extensions import db
from webapp.models import TrainingRun
from webapp.review import queue


def test_training_page_for_engineers_only(trained_app):
    client = trained_app.test_client()
    login(client, "doctor")
    assert client.get("/training").status_code == 403
    login(client, "engineer")
    page = client.get("/training").get_data(as_text=True)
    assert "Train now" in page and "succeeded" in page and "v1" in page


def test_train_now_queues_one_run_and_does_not_train(trained_app):
    client = trained_app.test_client()
    login(client, "engineer")
    token = csrf_token(client, "/training")
    for _ in range(2):
        assert client.post("/training/run", data={"csrf_token": token}).status_code == 302
    queued = db.session.execute(db.select(TrainingRun).filter_by(status="queued")).scalars().all()
    assert len(queued) == 1 and queued[0].trigger == "manual" and queued[0].requested_by.username == "engineer"
    status = client.get("/training/status").get_json()
    assert [run["id"] for run in status["active"]] == [queued[0].id]
    assert trained_app.extensions["medal"].registry.version_for("candidate") is None


def test_strategy_setting_changes_the_queue_order(trained_app):
    client = trained_app.test_client()
    login(client, "engineer")
    token = csrf_token(client, "/training")
    client.post("/training/strategy", data={"csrf_token": token, "strategy": "entropy"})
    assert queue.current_strategy() == "entropy"
    response = client.post("/training/strategy", data={"csrf_token": token, "strategy": "astrology"})
    assert response.status_code == 400 and queue.current_strategy() == "entropy"


def test_doctors_cannot_poll_or_start_training(trained_app):
    client = trained_app.test_client()
    login(client, "doctor")
    token = csrf_token(client, "/review")
    assert client.get("/training/status").status_code == 403
    assert client.post("/training/run", data={"csrf_token": token}).status_code == 403
    assert db.session.execute(db.select(TrainingRun).filter_by(status="queued")).first() is None


def test_progress_endpoint_reports_the_running_epoch(trained_app):
    run = TrainingRun(
        trigger="manual", status="running", progress={"epoch": 2, "max_epochs": 4, "step": 3, "steps": 5, "loss": 0.41}
    )
    db.session.add(run)
    db.session.commit()
    client = trained_app.test_client()
    login(client, "engineer")
    active = client.get("/training/status").get_json()["active"]
    assert [(r["id"], r["status"], r["progress"]["epoch"], r["progress"]["loss"]) for r in active] == [
        (run.id, "running", 2, 0.41)
    ]
    page = client.get("/training").get_data(as_text=True)
    assert "training.js" in page and trained_app.config["MLFLOW_TRACKING_URI"] in page
    succeeded = db.session.execute(db.select(TrainingRun).filter_by(status="succeeded")).scalars().first()
    assert f"/#/runs/{succeeded.mlflow_run_id}" in page


def test_medal_simulate_writes_curves(app, tmp_path):
    from tests.learning.test_simulate import tiny_npz

    data = tiny_npz(tmp_path / "tiny.npz")
    out = tmp_path / "sim"
    result = app.test_cli_runner().invoke(
        args=[
            "simulate",
            "--data",
            str(data),
            "--strategies",
            "random,entropy",
            "--seeds",
            "0",
            "--rounds",
            "2",
            "--batch",
            "5",
            "--seed-size",
            "8",
            "--epochs",
            "1",
            "--backbone",
            "small_cnn",
            "--size",
            "32",
            "--out",
            str(out),
        ]
    )
    assert result.exit_code == 0, result.output
    assert len((out / "learning_curves.csv").read_text().splitlines()) == 1 + 2 * 3
    assert (out / "learning_curves.png").exists()
    refused = app.test_cli_runner().invoke(args=["simulate", "--data", str(data), "--strategies", "astrology"])
    assert refused.exit_code != 0 and "astrology" in refused.output
