"""A run's own curves and clock inside medal: the per-epoch history a fine-tune keeps in its
progress, the run page, its curves as an image, two runs compared, and the time left."""

import base64
import re
from datetime import timedelta

import pytest

from tests.conftest import login
from webapp.extensions import db
from webapp.models import TrainingRun, utcnow
from webapp.training import timing

HISTORY = [
    {"epoch": 1, "train_loss": 0.91, "val_loss": 0.80, "val_auc": 0.62, "val_acc": 0.55},
    {"epoch": 2, "train_loss": 0.64, "val_loss": 0.71, "val_auc": 0.74, "val_acc": 0.66},
    {"epoch": 3, "train_loss": 0.48, "val_loss": 0.69, "val_auc": None, "val_acc": 0.70},
]


def svgs(page: str) -> list[str]:
    """The SVG text of every chart a page shows as a data: image."""
    return [
        base64.b64decode(found).decode() for found in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", page)
    ]


def past_run(history=HISTORY, metrics=None, **fields) -> TrainingRun:
    started = utcnow() - timedelta(minutes=30)
    run = TrainingRun(
        trigger="manual",
        kind="round",
        status="succeeded",
        started_at=started,
        finished_at=started + timedelta(minutes=6),
        progress={"stage": "registering", "epoch": len(history), "history": history},
        metrics=metrics or {"best_val_auc": 0.74, "best_epoch": 2, "epochs": len(history)},
        **fields,
    )
    db.session.add(run)
    db.session.commit()
    return run


def test_a_fine_tune_keeps_its_per_epoch_metrics_in_its_progress(trained_app):
    run = db.session.execute(db.select(TrainingRun).filter_by(status="succeeded")).scalars().one()
    rows = run.progress["history"]
    assert rows and [row["epoch"] for row in rows] == list(range(1, len(rows) + 1))
    assert {"train_loss", "val_loss", "val_auc", "val_acc"} <= set(rows[-1])
    assert run.progress["elapsed_s"] > 0 and run.metrics["epochs"] == len(rows)


def test_the_run_page_draws_loss_and_validation_curves_with_axis_titles(trained_app):
    client = trained_app.test_client()
    login(client, "engineer")
    run = past_run()
    page = client.get(f"/training/runs/{run.id}").get_data(as_text=True)
    assert "Training run #" in page and 'id="epochs"' in page and "kept" in page
    loss, validation = svgs(page)
    assert "Epoch" in loss and "Loss (lower is better)" in loss and "validation loss" in loss
    assert "Validation metric (0 to 1)" in validation and "validation AUC" in validation
    # the real run's page too: its curves come from what the fine-tune reported
    assert len(svgs(client.get("/training/runs/1").get_data(as_text=True))) == 2


def test_a_runs_curves_as_an_image_for_the_live_page(trained_app):
    client = trained_app.test_client()
    login(client, "engineer")
    run = past_run()
    response = client.get(f"/training/runs/{run.id}/loss.svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert "Loss (lower is better)" in response.get_data(as_text=True)
    assert client.get(f"/training/runs/{run.id}/weather.svg").status_code == 404
    assert client.get("/training/runs/9999/loss.svg").status_code == 404


def test_two_runs_side_by_side_with_their_numbers_and_curves(trained_app):
    client = trained_app.test_client()
    login(client, "engineer")
    other = past_run(history=[{**row, "train_loss": row["train_loss"] / 2} for row in HISTORY])
    page = client.get(f"/training/compare?a=1&b={other.id}").get_data(as_text=True)
    assert f"Training runs #1 and #{other.id} side by side" in page
    assert "Validation AUC of the kept weights" in page and "0.740" in page
    charts = svgs(page)
    assert len(charts) == 4  # training loss, validation loss, validation AUC, validation accuracy
    assert all("Epoch" in svg for svg in charts) and "run #1" in charts[0] and f"run #{other.id}" in charts[0]
    assert "Validation AUC (0 to 1)" in charts[2]


@pytest.mark.parametrize(
    "query, status, message",
    [
        ("a=1", 400, "Choose a training run for the second run"),
        ("a=one&b=1", 400, "must be a training run number"),
        ("a=1&b=1", 400, "Choose two different training runs"),
        ("a=1&b=404", 404, "There is no training run 404"),
    ],
)
def test_comparing_refuses_what_is_not_two_runs(trained_app, query, status, message):
    client = trained_app.test_client()
    login(client, "engineer")
    response = client.get(f"/training/compare?{query}")
    assert response.status_code == status and message in response.get_data(as_text=True)


def test_compare_opened_without_a_choice_shows_the_two_latest_runs(trained_app):
    client = trained_app.test_client()
    login(client, "engineer")
    other = past_run()
    response = client.get("/training/compare")
    assert response.status_code == 302 and response.location.endswith(f"/training/compare?a=1&b={other.id}")
    assert f"Training runs #1 and #{other.id} side by side" in client.get(response.location).get_data(as_text=True)


def test_compare_with_one_run_says_a_second_is_needed(app):
    client = app.test_client()
    login(client, "engineer")
    response = client.get("/training/compare", follow_redirects=True)
    assert response.status_code == 200 and "there is not a second one yet" in response.get_data(as_text=True)


def test_doctors_may_not_open_runs(trained_app):
    client = trained_app.test_client()
    login(client, "doctor")
    assert client.get("/training/runs/1").status_code == 403
    assert client.get("/training/runs/1/loss.svg").status_code == 403


def test_a_running_run_says_how_long_it_ran_and_about_how_long_is_left(trained_app):
    run = TrainingRun(
        trigger="manual",
        status="running",
        started_at=utcnow() - timedelta(minutes=5),
        # the fine-tune took 4 min for 1.5 of 4 epochs: 2.5 epochs left at that pace, about 7 min
        progress={
            "stage": "training",
            "epoch": 2,
            "max_epochs": 4,
            "step": 5,
            "steps": 10,
            "elapsed_s": 240,
            "loss": 0.5,
            "history": HISTORY[:1],
        },
    )
    db.session.add(run)
    db.session.commit()
    client = trained_app.test_client()
    login(client, "engineer")
    (active,) = client.get("/training/status").get_json()["active"]
    assert active["timing"]["text"] == "Running for 5 min · about 7 min left"
    assert active["epochs_reported"] == 1 and active["curves"]["loss"].endswith(f"/training/runs/{run.id}/loss.svg")
    assert "about 7 min left" in client.get(f"/training/runs/{run.id}").get_data(as_text=True)


def test_before_its_first_report_a_run_is_timed_by_past_runs_of_its_kind():
    started = utcnow() - timedelta(minutes=2)
    run = TrainingRun(status="running", kind="round", started_at=started, progress={"stage": "preparing"})
    clock = timing.estimate(run, past=[300.0, 420.0, 360.0], now=started + timedelta(minutes=2))
    assert clock.left_s == 240 and clock.text == "Running for 2 min · about 4 min left (from past runs)"
    assert timing.estimate(run, past=[], now=started + timedelta(minutes=2)).text == "Running for 2 min"


def test_time_left_follows_the_share_of_the_planned_epochs_done():
    assert timing.done_share({"epoch": 1, "max_epochs": 4, "step": 0, "steps": 10}) == 0
    assert timing.done_share({"epoch": 3, "max_epochs": 4, "step": 5, "steps": 10}) == 0.625
    assert timing.done_share({"stage": "preparing"}) is None
    assert [timing.duration(s) for s in (12, 250, 3900)] == ["12 s", "4 min 10 s", "1 h 5 min"]
    queued = TrainingRun(status="queued")
    assert timing.estimate(queued, past=[300.0]).text == ""


def test_a_round_that_averaged_its_epochs_says_which(trained_app):
    client = trained_app.test_client()
    login(client, "engineer")
    run = past_run(metrics={"best_val_auc": 0.74, "best_epoch": 3, "kept_epochs": [2, 3], "epochs": 3})
    page = client.get(f"/training/runs/{run.id}").get_data(as_text=True)
    assert "the mean of epochs 2–3" in page
    assert page.count('<span class="tag ok">averaged</span>') == 2 and ">kept</span>" not in page
    older = past_run()  # a run from before rounds averaged: its best epoch, as it was
    page = client.get(f"/training/runs/{older.id}").get_data(as_text=True)
    assert "epoch 2" in page and page.count('<span class="tag ok">kept</span>') == 1


def test_a_runs_page_shows_the_operating_point_its_model_decides_with(trained_app):
    client = trained_app.test_client()
    login(client, "engineer")
    real = db.session.execute(db.select(TrainingRun).filter_by(status="succeeded")).scalars().first()
    assert real.metrics["operating_point"]["sensitivity_after"]  # the fine-tune fitted one
    page = client.get(f"/training/runs/{real.id}").get_data(as_text=True)
    assert 'id="operating-point"' in page
    point = {
        "offsets": [0.0, 0.0, 0.15],
        "sensitivity_before": {"normal": 0.95, "bacterial_pneumonia": 0.6, "viral_pneumonia": 0.6},
        "sensitivity_after": {"normal": 0.95, "bacterial_pneumonia": 0.55, "viral_pneumonia": 0.7},
        "accuracy_before": 0.71,
        "accuracy_after": 0.7,
        "unreachable": {"bacterial_pneumonia": "sensitivity 0.55 on validation, below the floor 0.75: <not chased>"},
        "floors": {"normal": 0.9, "bacterial_pneumonia": 0.75, "viral_pneumonia": 0.65},
    }
    run = past_run(metrics={"best_val_auc": 0.74, "best_epoch": 2, "epochs": 3, "operating_point": point})
    page = client.get(f"/training/runs/{run.id}").get_data(as_text=True)
    card = page[page.index('id="operating-point"') :]
    assert "offsets viral_pneumonia +0.15" in page  # among the run's facts, as the comparison lists them too
    cells = ["viral_pneumonia", "0.65", "0.600", "0.700", "+0.15"]  # class, floor, before, after, offset
    assert re.search(r"\s*".join(f"<td>{re.escape(cell)}</td>" for cell in cells), card)
    assert "below the floor 0.75: &lt;not chased&gt;" in card  # the reason, escaped
    assert "Validation accuracy 0.710 at the most probable class, 0.700 with the offsets" in card
    older = past_run()  # a run from before operating points were kept
    page = client.get(f"/training/runs/{older.id}").get_data(as_text=True)
    assert 'id="operating-point"' not in page


def test_offsets_are_named_by_the_models_classes_when_one_had_no_validation_films():
    """A class without validation films has no sensitivity: the offsets still go to their own classes."""
    from webapp.training.views import operating_point_rows, operating_point_words

    point = {
        "offsets": [0.0, 0.0, 0.3],
        "sensitivity_before": {"normal": 0.8, "bacterial_pneumonia": 0.6},
        "sensitivity_after": {"normal": 0.78, "bacterial_pneumonia": 0.75},
        "classes": ["normal", "covid19", "bacterial_pneumonia"],
        "unreachable": {},
        "floors": {"bacterial_pneumonia": 0.75},
    }
    assert operating_point_words(point) == "offsets bacterial_pneumonia +0.30"
    rows = {row["name"]: row for row in operating_point_rows(point)}
    assert rows["bacterial_pneumonia"]["offset"] == 0.3 and rows["covid19"]["offset"] == 0.0
    assert rows["covid19"]["before"] is None
    older = {key: value for key, value in point.items() if key != "classes"}  # kept before classes were
    assert operating_point_words(older) == "offsets +0.00, +0.00, +0.30"  # not guessed
    assert operating_point_rows(older) == []
