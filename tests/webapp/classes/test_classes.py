"""Classes at run time: add, rename, refuse to remove one in use; labels, training and the gate follow."""

import pytest

from tests.conftest import api_token, csrf_token, login, registry_of, seed_gold, seed_pool, user
from webapp.classes import catalog
from webapp.extensions import db
from webapp.models import AuditEvent, Label
from webapp.review import queue
from webapp.training import runs


def test_classes_add_on_the_command_line_and_doctors_label_with_it_at_once(trained_app):
    runner = trained_app.test_cli_runner()
    result = runner.invoke(args=["classes", "add", "covid_19", "--display", "COVID-19"])
    assert result.exit_code == 0, result.output
    assert trained_app.extensions["medal"].class_names == ["normal", "pneumonia", "covid_19"]
    listed = runner.invoke(args=["classes", "list"]).output
    assert "covid_19\tCOVID-19" in listed
    client = trained_app.test_client()
    login(client, "doctor")
    page = client.get("/review").get_data(as_text=True)
    assert "covid_19" in page or "COVID-19" in page  # a button for the new class
    image = queue.next_for(user("doctor2"))
    response = client.post(
        f"/api/v1/images/{image.id}/labels", json={"label": "covid_19"}, headers=api_token(trained_app, "doctor2")
    )
    assert response.status_code == 201, response.get_json()
    event = db.session.execute(db.select(AuditEvent).filter_by(kind="class")).scalar_one()
    assert event.details == {"action": "add", "class": "covid_19", "display": "COVID-19"}


@pytest.mark.parametrize("name, words", [("Covid 19", "not a class name"), ("normal", "already a class")])
def test_bad_or_duplicate_names_are_refused(app, name, words):
    result = app.test_cli_runner().invoke(args=["classes", "add", name])
    assert result.exit_code != 0 and words in result.output


def test_engineers_add_and_rename_on_the_settings_page_doctors_cannot(app):
    client = app.test_client()
    login(client, "doctor")
    assert client.get("/settings/classes").status_code == 403
    client = app.test_client()
    login(client, "engineer")
    token = csrf_token(client, "/settings/classes")
    client.post("/settings/classes", data={"csrf_token": token, "name": "tuberculosis", "display": "TB"})
    assert "tuberculosis" in app.extensions["medal"].class_names
    client.post("/settings/classes/rename", data={"csrf_token": token, "old": "tuberculosis", "new": "tb"})
    assert app.extensions["medal"].class_names == ["normal", "pneumonia", "tb"]
    assert "TB" in client.get("/settings/classes").get_data(as_text=True)


def test_a_renamed_class_maps_old_labels_and_keeps_their_text(trained_app):
    image = queue.next_for(user("doctor"))
    queue.submit(user("doctor"), image.id, "pneumonia")
    catalog.rename("pneumonia", "pneumonia_any", ["normal", "pneumonia"])
    label = db.session.execute(db.select(Label).filter_by(image_id=image.id)).scalar_one()
    assert label.label == "pneumonia"  # history keeps its words
    examples, _ = runs.training_set(trained_app.extensions["medal"].settings)
    mapped = {e.image_id: e.label for e in examples}
    assert mapped[image.id] == "pneumonia_any"
    assert {e.label for e in examples} == {"normal", "pneumonia_any"}  # imported labels map too


def test_removing_a_class_that_labels_use_is_refused_with_a_message(trained_app):
    runner = trained_app.test_cli_runner()
    result = runner.invoke(args=["classes", "remove", "pneumonia"])
    assert result.exit_code != 0 and "used by" in result.output and "rename" in result.output
    runner.invoke(args=["classes", "add", "emphysema"])
    assert runner.invoke(args=["classes", "remove", "emphysema"]).exit_code == 0
    assert "emphysema" not in trained_app.extensions["medal"].class_names


def test_the_next_fine_tune_grows_the_head_and_the_gate_knows_the_new_class(trained_app):
    seed_gold(8)
    catalog.add("covid_19", ["normal", "pneumonia"])
    run = runs.run(runs.enqueue("test"))
    assert run.status == "succeeded", run.error
    registry = registry_of(trained_app)
    assert registry.load(run.model_version).spec.class_names == ["normal", "pneumonia", "covid_19"]
    assert registry.load(1).spec.class_names == ["normal", "pneumonia"]
    from webapp.approvals import gate_run

    report = gate_run.latest_report(run.model_version)
    assert set(report.candidate_metrics["per_class"]) == {"normal", "pneumonia", "covid_19"}
    assert set(report.champion_metrics["per_class"]) == {"normal", "pneumonia", "covid_19"}


def test_a_class_added_while_a_fine_tune_runs_waits_for_the_next_run(trained_app, monkeypatch):
    from learning import rounds

    real = rounds.fine_tune_round  # with a champion, a run is a round (the recipe imports it when it runs)

    def add_meanwhile(spec):
        catalog.add("covid_19", ["normal", "pneumonia"])  # an engineer adds a class mid-run
        return real(spec)

    monkeypatch.setattr(rounds, "fine_tune_round", add_meanwhile)
    first = runs.run(runs.enqueue("test"))
    assert first.status == "succeeded", first.error
    registry = registry_of(trained_app)
    assert registry.load(first.model_version).spec.class_names == ["normal", "pneumonia"]
    monkeypatch.setattr(rounds, "fine_tune_round", real)
    second = runs.run(runs.enqueue("test"))
    assert registry.load(second.model_version).spec.class_names == ["normal", "pneumonia", "covid_19"]


@pytest.mark.postgres
def test_classes_add_on_postgresql(pg_app):
    result = pg_app.test_cli_runner().invoke(args=["classes", "add", "covid_19"])
    assert result.exit_code == 0, result.output
    assert pg_app.extensions["medal"].class_names == ["normal", "pneumonia", "covid_19"]


def test_a_label_given_by_a_renamed_class_old_name_is_taken_as_the_new_class(app, tiny, tmp_path):
    """The alias maps a label submitted with the old name, as it maps stored labels: the label API,
    the review page, gold reads and adjudication, a report amendment and an import all take it as
    the class it is called now; a name that never was a class is still refused."""
    from tests import synthetic
    from webapp.gold import goldset
    from webapp.models import GoldItem, Image
    from webapp.reports import study
    from webapp.upload.ingest import ingest

    api, page, amended, agreeing, disputed, read_before = seed_pool(6, seed=41)
    goldset.mark([agreeing, disputed, read_before], user("engineer"))
    goldset.record_read(user("doctor"), read_before, "pneumonia", ["normal", "pneumonia"])
    catalog.rename("pneumonia", "pneumonia_any", ["normal", "pneumonia"])
    classes = app.extensions["medal"].class_names
    client = app.test_client()
    headers = api_token(app, "doctor")

    answer = client.post(f"/api/v1/images/{api}/labels", headers=headers, json={"label": "pneumonia"})
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["label"] == "pneumonia_any"
    unknown = client.post(f"/api/v1/images/{page}/labels", headers=headers, json={"label": "viral"})
    assert unknown.status_code == 400 and "pneumonia_any" in unknown.get_json()["error"]

    login(client, "doctor2")
    token = csrf_token(client, "/review")
    assert client.post(f"/review/{page}", data={"csrf_token": token, "label": "pneumonia"}).status_code == 302
    stored = dict(db.session.execute(db.select(Label.image_id, Label.label).where(Label.channel != "gold")).all())
    assert stored == {api: "pneumonia_any", page: "pneumonia_any"}

    queue.submit(user("doctor"), amended, "normal")
    report = study.amend(amended, user("doctor2"), "pneumonia", "The lateral film shows consolidation.")
    assert (report.status, report.label) == ("amended", "pneumonia_any")

    for name, image_id, label in [
        ("doctor", agreeing, "pneumonia"),
        ("doctor2", agreeing, "pneumonia_any"),
        ("doctor", disputed, "normal"),
        ("doctor2", disputed, "pneumonia"),
        ("doctor2", read_before, "pneumonia_any"),  # agrees with the read given before the rename
    ]:
        goldset.record_read(user(name), image_id, label, classes)
    goldset.adjudicate(user("admin"), disputed, "pneumonia", classes)
    finals = {image_id: db.session.get(GoldItem, image_id) for image_id in (agreeing, disputed, read_before)}
    assert {image_id: (item.status, item.final_label) for image_id, item in finals.items()} == {
        agreeing: ("final", "pneumonia_any"),
        disputed: ("final", "pneumonia_any"),
        read_before: ("final", "pneumonia_any"),
    }

    data = synthetic.png_bytes(synthetic.radiograph(1, seed=43))
    imported, _ = ingest(data, origin="import", split="train", reference_label="pneumonia")
    assert db.session.get(Image, imported.id).reference_label == "pneumonia_any"
    folder = tmp_path / "tree" / "pneumonia"  # a class folder still named the old way
    folder.mkdir(parents=True)
    (folder / "a.png").write_bytes(synthetic.png_bytes(synthetic.radiograph(1, seed=44)))
    result = app.test_cli_runner().invoke(args=["import", str(tmp_path / "tree"), "--split", "train"])
    assert result.exit_code == 0 and "1 imported" in result.output, result.output
    newest = db.session.execute(db.select(Image).order_by(Image.id.desc()).limit(1)).scalar_one()
    assert newest.reference_label == "pneumonia_any"


def test_a_label_agrees_with_a_prediction_made_under_the_class_old_name(app, tiny):
    """A model trained before the rename still answers with the old name: the doctor who confirms it
    (by either name) agrees with it, so agreement figures do not drop at a rename."""
    from webapp.inference import predictions
    from webapp.models import Image

    first, second = seed_pool(2, seed=47)
    made = {
        image_id: predictions.predict(db.session.get(Image, image_id)).predicted_class for image_id in (first, second)
    }
    db.session.commit()
    for image_id in (first, second):
        old = made[image_id]
        if old in app.extensions["medal"].class_names:
            catalog.rename(old, f"{old}_now", ["normal", "pneumonia"])
    saved = [
        queue.submit(user("doctor"), first, made[first]),
        queue.submit(user("doctor2"), second, f"{made[second]}_now"),
    ]
    assert [(row.label.label, row.label.agreed) for row in saved] == [
        (f"{made[first]}_now", True),
        (f"{made[second]}_now", True),
    ]
