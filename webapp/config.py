"""config.yaml plus MEDAL_* environment overrides, mapped to Flask's UPPERCASE keys."""
from __future__ import annotations

import copy
import os
import secrets
from pathlib import Path
from typing import Any, Mapping

import yaml

from registry.uris import artifact_root_for, tracking_uri_for

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config.yaml"
ENV_PREFIX = "MEDAL_"


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> dict:
    """The project settings: the YAML file, then MEDAL_SECTION__KEY variables on top."""
    environ = os.environ if environ is None else environ
    path = Path(path or environ.get("MEDAL_CONFIG") or DEFAULT_CONFIG)
    settings = yaml.safe_load(path.read_text()) or {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in ("MEDAL_CONFIG", "MEDAL_HOME", "MEDAL_SECRET_KEY"):
            continue
        keys = name[len(ENV_PREFIX):].lower().split("__")
        node = settings
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = yaml.safe_load(raw)
    home = environ.get("MEDAL_HOME") or settings.get("home") or "./instance"
    settings["home"] = str((Path.cwd() / home).resolve()) if not Path(home).is_absolute() else home
    return settings


def flask_config(settings: dict, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The UPPERCASE mapping Flask reads; paths all live under MEDAL_HOME."""
    environ = os.environ if environ is None else environ
    home = Path(settings["home"])
    home.mkdir(parents=True, exist_ok=True)
    tracking = environ.get("MLFLOW_TRACKING_URI") or tracking_uri_for(str(home))
    database = environ.get("DATABASE_URL") or f"sqlite:///{home}/medal.db"
    if database.startswith("postgres://"):
        database = "postgresql+psycopg://" + database[len("postgres://"):]
    elif database.startswith("postgresql://"):
        database = "postgresql+psycopg://" + database[len("postgresql://"):]
    return {
        "MEDAL": copy.deepcopy(settings),
        "MEDAL_HOME": str(home),
        "SECRET_KEY": environ.get("MEDAL_SECRET_KEY") or _secret_key(home),
        "SQLALCHEMY_DATABASE_URI": database,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "MLFLOW_TRACKING_URI": tracking,
        "MLFLOW_ARTIFACT_ROOT": environ.get("MLFLOW_ARTIFACT_ROOT") or artifact_root_for(str(home)),
        "IMAGE_STORE": str(home / "images"),
        "MODEL_CACHE": str(home / "model-cache"),
        "MAX_CONTENT_LENGTH": int(settings["images"]["max_upload_mb"]) * 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "WTF_CSRF_TIME_LIMIT": None,
    }


def _secret_key(home: Path) -> str:
    """A per-installation key kept beside the data, so sessions survive restarts."""
    path = home / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
