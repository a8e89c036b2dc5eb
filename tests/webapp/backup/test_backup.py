"""`medal backup` / `medal restore`: a round trip into a fresh MEDAL_HOME keeps labels, images, model
versions and aliases, the restored app serves the champion, a backup taken under writes is consistent,
and a changed file or an occupied home is refused."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path

import pytest

from tests import synthetic
from tests.conftest import api_token, registry_of, seed_pool, upload_synthetic, user
from webapp.extensions import db
from webapp.models import AuditEvent, Image, Label


def state(app) -> dict:
    """What a restore must bring back, read through the app."""
    store = Path(app.config["IMAGE_STORE"])
    registry = registry_of(app)
    return {
        "labels": sorted(
            (label.image_id, label.user.username, label.label)
            for label in db.session.execute(db.select(Label)).scalars()
        ),
        "images": sorted(
            (image.id, image.sha256, hashlib.sha256((store / image.path).read_bytes()).hexdigest())
            for image in db.session.execute(db.select(Image)).scalars()
        ),
        "versions": sorted((v.version, v.run_id) for v in registry.versions()),
        "aliases": registry.aliases(),
    }


def label_some(n: int) -> None:
    from webapp.review import queue

    doctor = user("doctor")
    for _ in range(n):
        image = queue.next_for(doctor)
        queue.submit(doctor, image.id, "pneumonia")


def fresh_app(home: Path, monkeypatch, database_url: str | None = None):
    from webapp import create_app

    monkeypatch.setenv("MEDAL_HOME", str(home))
    if database_url:
        monkeypatch.setenv("DATABASE_URL", database_url)
    return create_app({"TESTING": True})


def round_trip(app, tmp_path, monkeypatch, database_url: str | None = None) -> None:
    from webapp.approvals import decisions

    seed_pool(6, seed=11)
    decisions.decide(2, user("engineer"), approve=True, reason="better", override=True)
    label_some(3)
    before = state(app)
    assert before["aliases"] == {"champion": 2, "previous": 1} and len(before["labels"]) == 3
    out = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "bk")])
    assert out.exit_code == 0, out.output
    manifest = json.loads((tmp_path / "bk" / "manifest.json").read_text())
    assert manifest["database"]["counts"]["label"] == 3 and manifest["mlflow"]["aliases"] == before["aliases"]

    restored = fresh_app(tmp_path / "restored", monkeypatch, database_url)
    with restored.app_context():  # the CLI runner of a plain click command runs in the context it finds
        out = restored.test_cli_runner().invoke(args=["restore", str(tmp_path / "bk")])
        assert out.exit_code == 0, out.output
        assert state(restored) == before
        assert [e.kind for e in db.session.execute(db.select(AuditEvent).filter_by(kind="restore")).scalars()] == [
            "restore"
        ]
        prediction = upload_synthetic(restored.test_client(), api_token(restored, "doctor"), seed=5)
        assert prediction["model_version"] == 2  # the restored app serves the champion
        again = restored.test_cli_runner().invoke(args=["restore", str(tmp_path / "bk")])
        assert again.exit_code != 0 and "--force" in again.output  # it holds data now
        from webapp.inference import explanations

        explanations.drain()  # the upload's heat map is made in the background, on this database
        db.session.remove()
        db.engine.dispose()


def test_round_trip_on_sqlite_into_a_fresh_home(gated, app, tmp_path, monkeypatch):
    round_trip(app, tmp_path, monkeypatch)


@pytest.mark.postgres
def test_round_trip_on_postgresql(pg_app, postgres, tmp_path, monkeypatch):
    from tests.conftest import _register_tiny, seed_gold
    from webapp.approvals import decisions

    registry = registry_of(pg_app)
    assert [_register_tiny(registry, seed) for seed in (1, 2)] == [1, 2]
    registry.set_alias("champion", 1)
    seed_gold(8)
    registry.set_alias("candidate", 2)
    decisions.on_candidate(2)
    round_trip(pg_app, tmp_path, monkeypatch, postgres.create_database("t_restored_round_trip"))


def test_a_backup_taken_while_doctors_write_is_consistent(gated, app, tmp_path):
    from webapp.backup import archive
    from webapp.upload.ingest import ingest

    stop, written = threading.Event(), []

    def write():
        with app.app_context():
            doctor = user("doctor")
            seed = 1000
            while not stop.is_set() and seed < 1100:
                row, _ = ingest(synthetic.png_bytes(synthetic.radiograph(seed % 2, seed=seed)), origin="import")
                db.session.flush()
                db.session.add(Label(image_id=row.id, user_id=doctor.id, label="pneumonia"))
                db.session.commit()
                written.append(row.id)
                seed += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while len(written) < 3:
            threading.Event().wait(0.05)
        manifest = archive.backup(tmp_path / "bk")
    finally:
        stop.set()
        writer.join()
    copy = sqlite3.connect(tmp_path / "bk" / "database" / "medal.db")
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    counts = manifest["database"]["counts"]
    assert copy.execute("SELECT count(*) FROM label").fetchone()[0] == counts["label"] >= 3
    orphans = "SELECT count(*) FROM label WHERE image_id NOT IN (SELECT id FROM image)"
    assert copy.execute(orphans).fetchone()[0] == 0
    paths = [row[0] for row in copy.execute("SELECT path FROM image")]
    copy.close()
    assert all((tmp_path / "bk" / "images" / path).is_file() for path in paths)  # every row's file is there
    assert len(written) > 3 or counts["image"] >= 3
    archive.verify(tmp_path / "bk")


def test_a_changed_backup_file_is_refused_and_nothing_is_touched(gated, app, tmp_path, monkeypatch):
    from webapp.backup import archive

    seed_pool(2, seed=12)
    archive.backup(tmp_path / "bk")
    image = next((tmp_path / "bk" / "images").rglob("*.png"))
    image.write_bytes(image.read_bytes() + b"x")
    restored = fresh_app(tmp_path / "restored", monkeypatch)
    with restored.app_context():
        out = restored.test_cli_runner().invoke(args=["restore", str(tmp_path / "bk")])
        assert out.exit_code != 0 and "changed since the backup" in out.output
        assert not (tmp_path / "restored" / "images").exists()
        db.engine.dispose()


def test_backup_refuses_a_directory_that_is_not_empty(app, tmp_path):
    (tmp_path / "bk").mkdir()
    (tmp_path / "bk" / "x").write_text("x")
    out = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "bk")])
    assert out.exit_code != 0 and "not empty" in out.output
