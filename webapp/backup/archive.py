"""`medal backup DIR` and `medal restore DIR`: what a backup holds, how it is taken consistently
while the platform works, and how it is verified and brought back.

A backup directory:
    manifest.json            time, versions, counts, aliases, and a sha256 of every other file
    database/medal.db        the app database (SQLite online backup API) or database/medal.pgdump (pg_dump -Fc)
    mlflow/mlruns.db         the MLflow store (SQLite online backup API), or mlflow/mlruns.pgdump
    mlflow/artifacts/        the MLflow artifact directory (model weights, figures)
    images/                  the content-addressed image store
    keys/                    secret_key and pseudonym_key: without the pseudonym key, new studies of a
                             known patient would no longer link to the old ones

Consistency: the alias-change lock is held while both stores are copied, so no promotion falls between
them; the app database is copied first, so every model version it names is in the MLflow copy.
Images and artifacts are write-once files stored before the rows that name them commit, so copying
them after the database snapshots finds every file a row names (a newer file is harmless). With an
MLflow tracking server the operator backs up the server's own stores; the manifest says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

from flask import current_app
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, make_url

from webapp import audit
from webapp.errors import Problem
from webapp.extensions import db
from webapp.models import Setting

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
FORMAT = 1
KEYS = ("secret_key", "pseudonym_key")
COUNTED = ("user", "image", "prediction", "label", "gold_item", "training_run", "gate_report", "audit_event")
SERVER_NOTE = (
    "MLflow runs as a tracking server: back up its backend store (pg_dump of its database) and its "
    "artifact store (the bucket or directory it serves) with the server's own tools, at the same time."
)
LOCK_WAIT_S = 60


class BackupError(Problem):
    status = 409


# --- taking a backup ------------------------------------------------------------------------


def backup(target: Path) -> dict:
    """Write a backup into `target` (a new or empty directory); returns the manifest. A crash while
    writing leaves only `target.partial`, never a directory that looks like a finished backup."""
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty; back up into a new directory.")
    stage = target.with_name(target.name + ".partial")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    from webapp.approvals import lock

    lease = _take_alias_lock(lock)
    try:
        database = _copy_app_database(stage / "database")
        mlflow_store = _copy_mlflow_store(stage / "mlflow")
    finally:
        lock.release(lease)
    _copy_tree(Path(current_app.config["IMAGE_STORE"]), stage / "images")
    artifacts = _artifact_dir(current_app.config["MLFLOW_ARTIFACT_ROOT"])
    if artifacts is not None and mlflow_store["kind"] != "server":
        _copy_tree(artifacts, stage / "mlflow" / "artifacts")
    home = Path(current_app.config["MEDAL_HOME"])
    for name in KEYS:
        if (home / name).exists():
            (stage / "keys").mkdir(exist_ok=True)
            shutil.copy2(home / name, stage / "keys" / name)
    files = _checksums(stage)
    manifest = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(),
        "versions": _versions(),
        "home": str(home),
        "database": database,
        "mlflow": dict(mlflow_store, artifact_root=current_app.config["MLFLOW_ARTIFACT_ROOT"]),
        "alias_lock_lease": lease,
        "files": files,
    }
    (stage / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    if target.exists():
        target.rmdir()
    stage.rename(target)
    log.info("backup written to %s (%d files)", target, len(files))
    return manifest


def _take_alias_lock(lock) -> str:
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        lease = lock.take()
        if lease is not None:
            return lease
        if time.monotonic() > deadline:
            raise BackupError("A model change has held the alias lock for a minute; try the backup again.")
        time.sleep(0.5)


def _sqlite_file(url: URL) -> Path:
    """The file of a SQLite database URL (an in-memory one has none to back up or restore)."""
    if not url.database:
        raise BackupError(f"{url.render_as_string(hide_password=True)} names no database file.")
    return Path(url.database)


def _copy_app_database(folder: Path) -> dict:
    folder.mkdir(parents=True)
    url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite":
        copy = folder / "medal.db"
        _sqlite_backup(_sqlite_file(url), copy)
        return {"kind": "sqlite", "file": "database/medal.db", "counts": _sqlite_counts(copy), **_sqlite_revision(copy)}
    if url.get_backend_name() == "postgresql":
        return {
            "kind": "postgresql",
            "file": "database/medal.pgdump",
            **_pg_dump_with_counts(url, folder / "medal.pgdump"),
        }
    raise BackupError(f"Backing up a {url.get_backend_name()} database is not supported.")


def _copy_mlflow_store(folder: Path) -> dict:
    folder.mkdir(parents=True)
    uri = current_app.config["MLFLOW_TRACKING_URI"]
    from webapp.services import services

    aliases = services().registry.aliases()  # under the alias lock: what the copy holds
    if uri.startswith(("http://", "https://")):
        return {"kind": "server", "uri": uri, "note": SERVER_NOTE, "aliases": aliases}
    url = make_url(uri)
    if url.get_backend_name() == "sqlite":
        copy = folder / "mlruns.db"
        _sqlite_backup(_sqlite_file(url), copy)
        with sqlite3.connect(copy) as con:
            versions = con.execute("SELECT count(*) FROM model_versions").fetchone()[0]
        return {"kind": "sqlite", "file": "mlflow/mlruns.db", "model_versions": versions, "aliases": aliases}
    if url.get_backend_name() == "postgresql":
        _pg_dump(url, folder / "mlruns.pgdump")
        return {"kind": "postgresql", "file": "mlflow/mlruns.pgdump", "aliases": aliases}
    raise BackupError(f"Backing up an MLflow store at {url.get_backend_name()} is not supported.")


def _sqlite_backup(source: Path, copy: Path) -> None:
    """SQLite's online backup: a consistent snapshot while other processes keep writing."""
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(copy)
    try:
        with dst:
            src.backup(dst)
        # a copy in WAL mode would grow -wal and -shm files beside it whenever it is opened: one
        # self-contained file instead (the app puts its live database back in WAL on connect)
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def _sqlite_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as con:
        return {table: con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in COUNTED}  # noqa: S608


def _sqlite_revision(path: Path) -> dict:
    with sqlite3.connect(path) as con:
        row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    return {"revision": row[0] if row else None}


def _pg_dump_with_counts(url, out: Path) -> dict:
    """pg_dump from an exported snapshot, and the counts read in that same snapshot."""
    engine = db.engine.execution_options(isolation_level="REPEATABLE READ")
    with engine.connect() as connection:
        snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        counts = {
            table: connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()  # noqa: S608
            for table in COUNTED
        }
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        _pg_dump(url, out, snapshot=snapshot)
        connection.rollback()
    return {"counts": counts, "revision": revision}


def _pg_dump(url, out: Path, snapshot: str | None = None) -> None:
    args = [_pg_binary("pg_dump"), "--format=custom", "--no-owner", f"--file={out}"]
    if snapshot:
        args.append(f"--snapshot={snapshot}")
    _pg_run(args, url)


def _pg_run(args: list[str], url) -> None:
    # the password goes through the environment, never the command line (ps shows that)
    env = dict(os.environ, PGPASSWORD=url.password or "")
    dsn = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    done = subprocess.run([*args, f"--dbname={dsn}"], env=env, capture_output=True, text=True)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed: {done.stderr.strip()[-500:]}", 500)


def _pg_binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    if not candidates:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client).", 500)
    return str(candidates[0])


def _artifact_dir(root: str) -> Path | None:
    parsed = urlparse(root)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme == "":
        return Path(root)
    return None  # object storage: the operator's tools back it up


def _copy_tree(source: Path, target: Path) -> None:
    if not source.exists():
        target.mkdir(parents=True, exist_ok=True)
        return
    # temporary files of a write in flight (write_atomic's) are not part of the store
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*"), dirs_exist_ok=True)


def _checksums(folder: Path) -> dict[str, dict]:
    return {
        str(path.relative_to(folder)): {"sha256": _sha256(path), "bytes": path.stat().st_size}
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict:
    from importlib.metadata import version

    from webapp.training.runs import code_version

    return {"medal": code_version(), "mlflow": version("mlflow"), "sqlalchemy": version("sqlalchemy")}


# --- restoring ------------------------------------------------------------------------------


def verify(source: Path) -> dict:
    """The manifest, once every file it lists is present with its checksum; a BackupError otherwise."""
    source = Path(source)
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise BackupError(f"{source} holds no readable {MANIFEST}: {error}", 400) from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"Backup format {manifest.get('format')!r} is not {FORMAT}.", 400)
    bad = [
        name
        for name, expected in manifest["files"].items()
        if not (source / name).is_file() or _sha256(source / name) != expected["sha256"]
    ]
    if bad:
        raise BackupError(f"{len(bad)} file(s) missing or changed since the backup, e.g. {bad[0]}.", 400)
    return manifest


def restore(source: Path, force: bool = False) -> dict:
    """Bring a verified backup back into this MEDAL_HOME (empty, or `force` to replace what is there);
    the restore goes into the history. Returns what was restored."""
    source = Path(source)
    manifest = verify(source)
    if not force and _holds_data():
        raise BackupError("This MEDAL_HOME already holds data; restore into an empty one or pass --force.")
    config = current_app.config
    db.session.remove()
    db.engine.dispose()
    _restore_app_database(source, manifest["database"])
    _restore_mlflow(source, manifest["mlflow"])
    _replace_tree(source / "images", Path(config["IMAGE_STORE"]))
    shutil.rmtree(config["MODEL_CACHE"], ignore_errors=True)  # cached weights of another store
    home = Path(config["MEDAL_HOME"])
    for name in KEYS:
        if (source / "keys" / name).exists():
            shutil.copyfile(source / "keys" / name, home / name)
            (home / name).chmod(0o600)
    from flask_migrate import upgrade

    upgrade()  # an older backup is brought to this code's schema
    from webapp.approvals.lock import LOCK_KEY

    db.session.execute(db.delete(Setting).where(Setting.key == LOCK_KEY))  # the backup's own lease
    audit.record(
        audit.Kind.RESTORE,
        None,
        reason=f"Restored from the backup taken {manifest['created_at']}.",
        details={"backup_created_at": manifest["created_at"], "counts": manifest["database"].get("counts")},
        automatic=True,
    )
    db.session.commit()
    from webapp.services import services

    services().server.refresh()
    return {
        "created_at": manifest["created_at"],
        "counts": manifest["database"].get("counts"),
        "aliases": services().registry.aliases(),
        "files": len(manifest["files"]),
    }


def _holds_data() -> bool:
    config = current_app.config
    if inspect(db.engine).has_table("image"):
        if db.session.execute(db.select(db.func.count()).select_from(db.metadata.tables["image"])).scalar():
            return True
        if db.session.execute(db.select(db.func.count()).select_from(db.metadata.tables["label"])).scalar():
            return True
    store = Path(config["IMAGE_STORE"])
    if store.exists() and any(store.rglob("*.png")):
        return True
    from webapp.services import services

    return bool(services().registry.versions())


def _restore_app_database(source: Path, database: dict) -> None:
    url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
    if database["kind"] != url.get_backend_name():
        raise BackupError(f"The backup holds a {database['kind']} database; this app uses {url.get_backend_name()}.")
    if database["kind"] == "sqlite":
        _sqlite_backup(source / database["file"], _sqlite_file(url))
    else:
        _pg_restore(source / database["file"], url)


def _restore_mlflow(source: Path, store: dict) -> None:
    uri = current_app.config["MLFLOW_TRACKING_URI"]
    if store["kind"] == "server":
        log.warning("the backup's MLflow store is a tracking server: %s", SERVER_NOTE)
        return
    url = make_url(uri)
    if store["kind"] != url.get_backend_name():
        raise BackupError(f"The backup holds a {store['kind']} MLflow store; this app uses {url.get_backend_name()}.")
    old, new = _artifact_dir(store["artifact_root"]), _artifact_dir(current_app.config["MLFLOW_ARTIFACT_ROOT"])
    if store["kind"] == "sqlite":
        _sqlite_backup(source / store["file"], _sqlite_file(url))
        if old is not None and new is not None and old != new:
            _rewrite_paths(_sqlite_file(url), str(old), str(new))
    else:
        _pg_restore(source / store["file"], url)
    if new is not None:
        _replace_tree(source / "mlflow" / "artifacts", new)


def _rewrite_paths(mlruns: Path, old: str, new: str) -> None:
    """Artifact locations are stored as absolute paths: point them at this home's artifact directory."""
    with sqlite3.connect(mlruns) as con:
        tables = [row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in con.execute(f'PRAGMA table_info("{table}")').fetchall():
                if "CHAR" in column[2].upper() or "TEXT" in column[2].upper():
                    con.execute(
                        f'UPDATE "{table}" SET "{column[1]}" = replace("{column[1]}", ?, ?) '  # noqa: S608
                        f'WHERE instr("{column[1]}", ?) > 0',
                        (old, new, old),
                    )


def _pg_restore(dump: Path, url) -> None:
    _pg_run([_pg_binary("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction", str(dump)], url)


def _replace_tree(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    if source.exists():
        shutil.copytree(source, target)
    else:
        target.mkdir(parents=True)
