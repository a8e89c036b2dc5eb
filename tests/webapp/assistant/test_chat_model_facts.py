"""The chat's answers about the model, from the platform's own records: the gold set's confusion matrix
(the gate's report), the training manifests in MLflow, a second Grad-CAM target, display names and doubt."""

import threading
from pathlib import Path

from tests.conftest import api_token, change_settings, registry_of, upload_synthetic
from webapp.extensions import db
from webapp.inference import predictions
from webapp.models import GateReport, Image, Prediction


def ask(app, prediction_id: int, message: str, mode: str = "standard") -> dict:
    client = app.test_client()
    response = client.post(
        f"/api/v1/predictions/{prediction_id}/chat",
        headers=api_token(app, "doctor"),
        json={"message": message, "mode": mode},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_most_common_error_is_read_from_the_gates_confusion_matrix(candidate_app):
    client = candidate_app.test_client()
    prediction = upload_synthetic(client, api_token(candidate_app, "doctor"), seed=71)
    assert prediction["model_version"] == 1  # the champion, measured beside candidate v2 on the gold set
    report = db.session.execute(db.select(GateReport).filter_by(model_version=2)).scalar_one()
    metrics = report.champion_metrics
    names = {"normal": "Normal", "pneumonia": "Pneumonia"}
    order = [names[name] for name in metrics["per_class"]]
    cells = [
        (count, order[truth], order[called])
        for truth, row in enumerate(metrics["confusion"])
        for called, count in enumerate(row)
        if truth != called and count
    ]
    body = ask(candidate_app, prediction["id"], "What does the model get wrong most often?")
    assert body["intent"] == "errors"
    if cells:
        count, truth, called = max(cells)
        expected = f"On the {metrics['n']} gold studies, model version 1's most common error is calling"
        assert body["answer"].startswith(f"{expected} {truth} {called} ({count} times).")
    else:
        assert body["answer"].startswith(f"On the {metrics['n']} gold studies, model version 1 made no error.")
    assert any("gold studies" in fact for fact in body["facts"])


def test_before_any_gold_measurement_the_errors_are_not_invented(trained_app):
    prediction = upload_synthetic(trained_app.test_client(), api_token(trained_app, "doctor"), seed=72)
    body = ask(trained_app, prediction["id"], "What does the model get wrong most often?")
    assert "has not been measured on the gold set yet" in body["answer"]


def test_training_use_is_read_from_the_versions_manifest(trained_app):
    manifest = registry_of(trained_app).training_manifest(1)
    assert manifest and all("sha256" in entry for entry in manifest)
    trained = db.session.get(Image, manifest[0]["image_id"])
    on_trained = predictions.predict(trained)  # a prediction on a film the model trained on
    db.session.commit()
    body = ask(trained_app, on_trained.id, "Was this image used to train the model?")
    assert body["intent"] == "training_data"
    assert body["answer"].startswith("Yes: model version 1's training manifest lists this image")

    new = upload_synthetic(trained_app.test_client(), api_token(trained_app, "doctor"), seed=73)
    body = ask(trained_app, new["id"], "Has the model seen this film before?")
    assert body["answer"].startswith("No: this image is not in the training data of model version 1.")
    plain = ask(trained_app, new["id"], "Was this X-ray used for training?", mode="plain")
    assert plain["answer"].startswith("No. The program did not learn from this X-ray.")


def test_a_version_whose_manifest_names_files_only_is_not_known(trained_app):
    from registry.client import RunRecord
    from webapp.training import runs

    registry = registry_of(trained_app)
    net = registry.load(1)
    # registered as an older demo did: its manifest lists file names, not contents
    record = RunRecord(params={}, manifest=[{"filename": "NORMAL/x.png"}])
    version = registry.register(registry.log_run(net, record, run_name="by-name"))
    runs.bootstrap_champion(version)
    image = db.session.execute(db.select(Image).filter_by(split="pool")).scalars().first()
    prediction = predictions.predict(image)
    db.session.commit()
    assert prediction.model_version == version
    body = ask(trained_app, prediction.id, "Did the model learn from this image?")
    assert "Not known for certain" in body["answer"] or "is not known" in body["answer"]


def test_why_not_shows_where_the_evidence_for_the_other_class_lies(trained_app):
    prediction = upload_synthetic(trained_app.test_client(), api_token(trained_app, "doctor"), seed=74)
    other = next(name for name in prediction["probabilities"] if name != prediction["predicted_class"])
    shown = {"normal": "Normal", "pneumonia": "Pneumonia"}
    body = ask(trained_app, prediction["id"], f"Why not {other}?")
    assert body["intent"] == "why_not"
    top = prediction["predicted_class"]
    assert f"{shown[top]} {prediction['probabilities'][top] * 100:.1f}% against" in body["answer"]
    assert f"The heat map of the evidence for {shown[other]}: " in body["answer"]  # a second Grad-CAM target
    assert any(fact.startswith(f"Heat map for {shown[other]}:") for fact in body["facts"])
    why = ask(trained_app, prediction["id"], "Why?")
    assert why["answer"] != body["answer"]


def test_chat_answers_in_display_names_and_says_uncertain_between(trained_app):
    prediction = upload_synthetic(trained_app.test_client(), api_token(trained_app, "doctor"), seed=75)
    row = db.session.get(Prediction, prediction["id"])
    row.probabilities = {"normal": 0.48, "pneumonia": 0.52}  # within the doubt margin
    row.predicted_class = "pneumonia"
    db.session.commit()
    body = ask(trained_app, prediction["id"], "How sure is it?")
    assert "The call is uncertain between Pneumonia and Normal." in body["answer"]
    change_settings(trained_app, {"doubt": {"margin": 0.01, "below": 0.5}})
    body = ask(trained_app, prediction["id"], "How sure is it?")
    assert "uncertain" not in body["answer"] and "The model gives Pneumonia 52.0%" in body["answer"]


def test_each_web_process_warms_the_assistant_in_the_background_and_create_app_does_not(app):
    from types import SimpleNamespace

    from gunicorn.config import Config

    from assistant import embeddings
    from webapp.cli import gunicorn_options

    assert "medal_assistant" not in app.extensions  # create_app neither builds nor loads it
    assert not any(t.name == "assistant-warm-up" for t in threading.enumerate())
    hook = gunicorn_options("127.0.0.1", 8001, 2, Path(app.config["MEDAL_HOME"]), 75)["post_worker_init"]
    Config().set("post_worker_init", hook)  # gunicorn accepts it as its hook
    hook(SimpleNamespace(wsgi=app))  # gunicorn calls it with the forked worker, its app loaded in .wsgi
    for warming in [t for t in threading.enumerate() if t.name == "assistant-warm-up"]:
        warming.join(180)  # (already done when an earlier test in this process loaded the encoder)
    ready = app.extensions["medal_assistant"]
    assert embeddings.encoder(ready.intents.package) is not None
    assert ready.intents._vectors is not None and ready.kb._vectors is not None  # nothing left for the first question
