"""Fixtures: an app on a temp MEDAL_HOME with a real SQLite database and MLflow store."""

from __future__ import annotations

import hashlib
import os
import re

import pytest

from tests import synthetic

pytest_plugins = ["tests.browser"]  # browser, live_url, screenshots

# Small and fast: a tiny CNN on 32 px synthetic images.
TEST_ENV = {
    "MEDAL_CLASSES": "[normal, pneumonia]",
    "MEDAL_GATE__MIN_SENSITIVITY": "{normal: 0.80, pneumonia: 0.85}",
    "MEDAL_MODEL__BACKBONE": "small_cnn",
    "MEDAL_IMAGES__SIZE": "32",
    "MEDAL_TRAINING__MAX_EPOCHS": "2",
    "MEDAL_TRAINING__BATCH_SIZE": "16",
    "MEDAL_TRAINING__AUGMENT": "false",
    "MEDAL_TRAINING__FREEZE_BACKBONE_EPOCHS": "0",
    "MEDAL_TRAINING__BALANCE": "none",
    "MEDAL_TRAINING__REPLAY_SAMPLES": "20",
    "MEDAL_TRAINING__ROUND__FROZEN_BLOCKS": "4",  # the small CNN's trunk: its first conv block
    "MEDAL_TRAINING__ROUND__MAX_EPOCHS": "2",
    "MEDAL_ASSISTANT__FIRST_ANSWER_WAIT_S": "120",  # tests read questions with the encoder, as a warm web process does
    "MEDAL_ACTIVE_LEARNING__MC_DROPOUT_PASSES": "4",
    "MEDAL_GATE__MIN_GOLD_SIZE": "4",
    "MEDAL_GATE__MIN_CLASS_GOLD": "0",
    "MEDAL_SERVING__POLL_SECONDS": "0",
}
PASSWORDS = {"doctor": "doctor-pass", "doctor2": "doctor2-pass", "engineer": "engineer-pass", "admin": "admin-pass"}


@pytest.fixture
def home(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("MEDAL_") or name in ("MLFLOW_TRACKING_URI", "DATABASE_URL"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MEDAL_HOME", str(tmp_path / "home"))
    for key, value in TEST_ENV.items():
        monkeypatch.setenv(key, value)
    return tmp_path / "home"


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the session, or a skip saying why there is none."""
    from tests.postgres import PostgresUnavailable, TemporaryPostgres

    try:
        server = TemporaryPostgres().start()
    except PostgresUnavailable as error:
        pytest.skip(str(error))
    yield server
    server.stop()


def _fresh_request_state() -> None:
    """Tests hold one app context for a whole test, so Flask's `g` would outlive a request: the user
    Flask-Login cached, or Flask-WTF's token, would pass to the next request. In production every
    request starts with an empty `g`; so does every test request."""
    from flask import g

    for name in ("_login_user", "csrf_token"):
        g.pop(name, None)


def _make_app():
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db
    from webapp.inference import explanations

    app = create_app({"TESTING": True})
    app.before_request_funcs.setdefault(None, []).insert(0, _fresh_request_state)
    with app.app_context():
        upgrade()
        _add_users(db)
        yield app
        explanations.drain()  # heat maps an upload started in the background
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(home):
    yield from _make_app()


@pytest.fixture
def pg_app(home, postgres, monkeypatch, request):
    """The app on a fresh PostgreSQL database instead of SQLite."""
    # a readable prefix and a hash of the whole name: parametrized tests share the prefix
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8]
    name = "t_" + re.sub(r"[^a-z0-9]", "_", request.node.name.lower())[:40] + "_" + digest
    monkeypatch.setenv("DATABASE_URL", postgres.create_database(name))
    yield from _make_app()


def _add_users(db) -> None:
    from webapp.models import User

    for name, password in PASSWORDS.items():
        role = "doctor" if name.startswith("doctor") else name
        user = User(username=name, role=role, can_adjudicate=name == "admin")
        user.set_password(password)
        db.session.add(user)
    db.session.commit()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def csrf_token(client, path: str = "/login") -> str:
    from flask import g

    # tests hold one app context, so Flask-WTF's per-context token cache would hand one client's
    # token to another: each client gets its own
    g.pop("csrf_token", None)
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def login(client, username: str) -> None:
    response = client.post(
        "/login", data={"username": username, "password": PASSWORDS[username], "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 302, response.data


@pytest.fixture
def csrf_off(app):
    """For page tests that post forms directly; CSRF itself is tested with it on."""
    app.config["WTF_CSRF_ENABLED"] = False
    return app


def _seed(n: int, seed: int, split: str, labeled: bool) -> list[tuple[int, str]]:
    """Import n synthetic images (inside an app context); returns (image id, true class)."""
    from webapp.extensions import db
    from webapp.upload.ingest import ingest

    images, labels = synthetic.dataset(n, seed=seed)
    rows = []
    for image, label in zip(images, labels):
        name = synthetic.CLASSES[label]
        row, _ = ingest(
            synthetic.png_bytes(image), origin="import", split=split, reference_label=name if labeled else None
        )
        db.session.flush()
        rows.append((row.id, name))
    db.session.commit()
    return rows


def seed_labeled(n: int = 40, split: str = "train") -> list[int]:
    """n labeled synthetic images, as an import brings the first training set."""
    return [image_id for image_id, _ in _seed(n, 1, split, labeled=True)]


def seed_pool(n: int = 12, seed: int = 7) -> list[int]:
    """n unlabeled synthetic images awaiting review."""
    return [image_id for image_id, _ in _seed(n, seed, "pool", labeled=False)]


@pytest.fixture
def trained_app(app):
    """The app with a tiny champion trained on synthetic images and a scored pool."""
    from webapp.inference import scoring
    from webapp.training import runs

    seed_labeled(40)
    seed_pool(12)
    run = runs.run(runs.enqueue("test"))
    assert run.status == "succeeded", run.error
    scoring.score()
    return app


@pytest.fixture
def trained_client(trained_app):
    return trained_app.test_client()


def api_token(app, username: str) -> dict:
    from webapp.auth.tokens import create_token
    from webapp.extensions import db
    from webapp.models import User

    user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one()
    return {"Authorization": f"Bearer {create_token(user)}"}


def seed_gold(n: int = 8, seed: int = 3) -> list[int]:
    """Adjudicated gold images (final labels), inside an app context."""
    from webapp.extensions import db
    from webapp.models import GoldItem, Image

    rows = _seed(n, seed, "pool", labeled=False)
    for image_id, name in rows:
        db.session.get(Image, image_id).is_gold = True
        db.session.add(GoldItem(image_id=image_id, status="final", final_label=name))
    db.session.commit()
    return [image_id for image_id, _ in rows]


@pytest.fixture
def candidate_app(trained_app):
    """Champion v1, a gold set, and candidate v2 that has been through the gate."""
    from webapp.training import runs

    seed_gold(8)
    run = runs.run(runs.enqueue("test"))
    assert run.status == "succeeded", run.error
    assert trained_app.extensions["medal"].registry.aliases() == {"champion": 1, "candidate": 2}
    return trained_app


# --- shared helpers ---------------------------------------------------------------------------


def user(name: str):
    """A seeded user by name (inside an app context)."""
    from webapp.extensions import db
    from webapp.models import User

    return db.session.execute(db.select(User).filter_by(username=name)).scalar_one()


def registry_of(app):
    return app.extensions["medal"].registry


def change_settings(app, changes: dict) -> None:
    """Replace the app's settings with a validated copy holding `changes` ({"section": {...}})."""
    services = app.extensions["medal"]
    services.settings = services.settings.with_changes(changes)


class PowerCut(BaseException):
    """Not an Exception: nothing in the code under test catches it, like a killed process."""


def race(app, action, arguments) -> list:
    """Run `action(argument)` in one thread per argument, each in its own app context, all at
    once; returns what each returned (or the exception it raised), in completion order."""
    import threading

    outcomes, start = [], threading.Barrier(len(arguments))

    def run(argument):
        with app.app_context():
            start.wait()
            try:
                outcomes.append(action(argument))
            except Exception as error:  # the caller asserts on the errors too
                outcomes.append(error)

    threads = [threading.Thread(target=run, args=(argument,)) for argument in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def aliases_applied(registry, change) -> bool:
    """Whether the registry's aliases are where `change` leaves them."""
    found = registry.aliases()
    done = found.get("champion") == change.champion_after
    if change.previous_after is not None:
        done = done and found.get("previous") == change.previous_after
    else:
        done = done and found.get("previous") != change.champion_after
    if change.clear_candidate:
        done = done and found.get("candidate") != change.champion_after
    return done


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
    """Tiny untrained models registered straight into the real temp MLflow store: versions 1-3,
    v1 champion, nothing gated yet."""
    registry = registry_of(app)
    versions = [_register_tiny(registry, seed) for seed in (1, 2, 3)]
    assert versions == [1, 2, 3]
    registry.set_alias("champion", 1)
    return registry


@pytest.fixture
def gated(app, tiny):
    """A gold set, champion v1, candidate v2 through the real gate."""
    from webapp.approvals import decisions

    seed_gold(8)
    tiny.set_alias("candidate", 2)
    decisions.on_candidate(2)
    return tiny


def version_info(registry, version: int):
    """The registered model version's info (tags, run id)."""
    return next(info for info in registry.versions() if info.version == version)


def upload_synthetic(client, headers: dict, seed: int, label: int = 1) -> dict:
    """Upload one synthetic radiograph through the API; returns its prediction."""
    import io

    data = synthetic.png_bytes(synthetic.radiograph(label, seed=seed))
    return client.post(
        "/api/v1/images",
        headers=headers,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(data), "x.png")},
    ).get_json()["prediction"]
