"""deploy/ is usable as shipped: nginx and systemd accept it, and the environment file names real
settings and every variable the units read."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from webapp.config import load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ENV_FILE = DEPLOY / "medal.env.example"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


def _env_file() -> dict[str, str]:
    """Every NAME=value in the example, commented-out ones included (they are documented too)."""
    found = {}
    for line in ENV_FILE.read_text().splitlines():
        match = re.match(r"^#?([A-Z][A-Z0-9_]*)=(.*?)(\s+#.*)?$", line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


def test_every_medal_variable_in_the_env_file_is_a_setting(tmp_path):
    medal = {name: value for name, value in _env_file().items() if name.startswith("MEDAL_")}
    medal.pop("MEDAL_CONFIG")
    medal["MEDAL_HOME"] = str(tmp_path)
    load_settings(environ=medal)  # an unknown key or a bad value raises SettingsError


def test_the_env_file_lists_every_security_setting():
    listed = _env_file()
    fields = type(load_settings(environ={}).security).model_fields
    missing = [f"MEDAL_SECURITY__{name.upper()}" for name in fields if f"MEDAL_SECURITY__{name.upper()}" not in listed]
    assert not missing, f"add to deploy/medal.env.example: {missing}"


def test_the_units_read_only_variables_the_env_file_sets():
    listed = _env_file()
    used = {name for unit in UNITS for name in re.findall(r"\$\{([A-Z_]+)\}", unit.read_text())}
    assert used and used <= set(listed), used - set(listed)
    active = {line.split("=", 1)[0] for line in ENV_FILE.read_text().splitlines() if re.match(r"^[A-Z_]+=", line)}
    assert {"DATABASE_URL", "MLFLOW_TRACKING_URI", "MEDAL_HOME", "MEDAL_SECRET_KEY"} <= active


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_units(tmp_path):
    venv = Path(sys.executable).parent
    names = []
    for unit in UNITS:
        text = unit.read_text().replace("/opt/medal/.venv/bin/", f"{venv}/")
        name = unit.name.replace("@.service", "@8001.service")  # an instance of the template
        (tmp_path / name).write_text(text)
        names.append(str(tmp_path / name))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *names], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def _nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


@pytest.mark.skipif(_nginx() is None, reason="nginx is not installed (`make system-deps` installs it)")
def test_nginx_accepts_the_tls_proxy(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=medal.test"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    site = (DEPLOY / "nginx" / "medal.conf").read_text()
    site = site.replace("/etc/ssl/medal/fullchain.pem", str(cert)).replace("/etc/ssl/medal/privkey.pem", str(key))
    (tmp_path / "medal.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  include {tmp_path}/medal.conf;\n}}\n"
    )
    done = subprocess.run(
        [_nginx(), "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "[warn]" not in done.stderr and "[emerg]" not in done.stderr, done.stderr


def test_the_web_processes_keep_an_idle_connection_longer_than_nginx_does():
    """nginx must be the one to close an idle upstream connection: one the web process closes while
    nginx reuses it resets the request, and nginx resends no POST (the doctor's label is a 502)."""
    upstream = re.search(r"upstream medal_web \{(.*?)\}", (DEPLOY / "nginx" / "medal.conf").read_text(), re.S)
    assert upstream is not None and re.search(r"^\s*keepalive \d+;", upstream.group(1), re.M)
    nginx_seconds = re.search(r"^\s*keepalive_timeout (\d+)s;", upstream.group(1), re.M)
    assert nginx_seconds is not None, "the upstream block names its keepalive_timeout"
    assert load_settings(environ={}).web.keepalive_seconds > int(nginx_seconds.group(1))
