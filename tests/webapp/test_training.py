"""Training page: live status, Train now (the web never trains), strategy setting."""
from tests.conftest import csrf_token, login
from webapp import reviewqueue
from webapp.extensions import db
from webapp.models import TrainingRun


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
    assert reviewqueue.current_strategy() == "entropy"
    response = client.post("/training/strategy", data={"csrf_token": token, "strategy": "astrology"})
    assert response.status_code == 400 and reviewqueue.current_strategy() == "entropy"
