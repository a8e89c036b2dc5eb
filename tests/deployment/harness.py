"""The multi-process deployment on one machine: PostgreSQL, an MLflow tracking server backed by it
with a proxied artifact store, web processes (gunicorn) and the worker, each its own process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import PIPE

from tests.postgres import TemporaryPostgres

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Response:
    status: int
    body: dict


def call(url: str, method: str = "GET", token: str | None = None, body: dict | None = None, timeout=60) -> Response:
    """One HTTP request; JSON in and out. An error status comes back as a Response, not raised."""
    headers, data = {"Accept": "application/json"}, None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    return _send(urllib.request.Request(url, data=data, method=method, headers=headers), timeout)


def upload(url: str, token: str, png: bytes, timeout=60) -> Response:
    boundary = uuid.uuid4().hex
    data = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"}
    return _send(urllib.request.Request(url, data=data, method="POST", headers=headers), timeout)


def _send(request: urllib.request.Request, timeout: float) -> Response:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return Response(reply.status, json.loads(reply.read() or b"{}"))
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            return Response(error.code, json.loads(text))
        except ValueError:
            return Response(error.code, {"text": text.decode(errors="replace")[:500]})


@dataclass
class Deployment:
    """Start with start(); stop() kills every process it started (whole process groups)."""

    root: Path
    env_overrides: dict[str, str]
    postgres: TemporaryPostgres | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    mlflow_url: str = ""
    artifacts: Path = field(init=False)
    home: Path = field(init=False)
    logs: Path = field(init=False)

    def __post_init__(self):
        self.artifacts, self.home, self.logs = self.root / "mlartifacts", self.root / "home", self.root / "logs"
        for path in (self.artifacts, self.home, self.logs):
            path.mkdir(parents=True, exist_ok=True)

    # --- the parts ----------------------------------------------------------------------------
    def start_databases(self) -> None:
        self.postgres = TemporaryPostgres().start()
        self.app_database = self.postgres.create_database("medal")
        self.mlflow_database = self.postgres.create_database("mlflow")

    def start_mlflow(self) -> None:
        """Started, not waited for (it migrates its database first): see wait_mlflow()."""
        port = free_port()
        self.mlflow_url = f"http://127.0.0.1:{port}"
        self.spawn(
            "mlflow",
            [
                str(BIN / "mlflow"),
                "server",
                "--backend-store-uri",
                self.mlflow_database,
                "--serve-artifacts",
                "--artifacts-destination",
                str(self.artifacts),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            env=self._base_env(),
        )

    def wait_mlflow(self, timeout: float = 180) -> None:
        self.wait_http("mlflow", f"{self.mlflow_url}/health", timeout)

    def configure_medal(self) -> None:
        self.env = self._base_env() | {
            "MEDAL_HOME": str(self.home),
            "DATABASE_URL": self.app_database,
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "MEDAL_SECRET_KEY": uuid.uuid4().hex,
            **self.env_overrides,
        }

    def medal(self, *args: str, timeout: float = 300) -> str:
        """A one-off `medal` command (migrate, users, tokens, import, train); its stdout."""
        return self.medal_together([list(args)], timeout)[0]

    def medal_together(self, commands: list[list[str]], timeout: float = 300) -> list[str]:
        """Independent `medal` commands at once (each loads torch: seconds saved per command); their
        stdouts, in order."""
        started = [
            (args, subprocess.Popen([str(BIN / "medal"), *args], cwd=ROOT, env=self.env, stdout=PIPE, stderr=PIPE))
            for args in commands
        ]
        outputs, failures = [], []
        for args, process in started:
            try:
                out, err = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
            if process.returncode != 0:
                failures.append(f"medal {' '.join(args)} failed ({process.returncode}):\n{err.decode()[-3000:]}")
            outputs.append(out.decode())
        if failures:
            raise AssertionError("\n".join(failures))
        return outputs

    def start_web(self, name: str, workers: int = 1) -> str:
        """A `medal web` (gunicorn) process; its base URL. Wait for it with wait_http(name, url + "/health")."""
        port = free_port()
        self.spawn(
            name, [str(BIN / "medal"), "web", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        )
        return f"http://127.0.0.1:{port}"

    def start_worker(self) -> None:
        self.spawn("worker", [str(BIN / "medal"), "worker"])

    # --- processes ----------------------------------------------------------------------------
    def spawn(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")
        # a session of its own: stop() kills the whole group (gunicorn and MLflow fork workers)
        process = subprocess.Popen(
            args, cwd=ROOT, env=env or self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.processes[name] = process
        return process

    def wait_http(self, name: str, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self.processes[name]
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")
            try:
                with urllib.request.urlopen(url, timeout=5) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"{name} did not answer {url} within {timeout} s:\n{self.log_tail(name)}")

    def alive(self, name: str) -> bool:
        return self.processes[name].poll() is None

    def log_tail(self, name: str, chars: int = 4000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for process in self.processes.values():
            try:  # stragglers, and children whose parent already left
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if process.poll() is None:
                process.wait(timeout=10)
        if self.postgres is not None:
            self.postgres.stop()

    def _base_env(self) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("MEDAL_", "MLFLOW_")) and name not in ("DATABASE_URL", "PYTEST_CURRENT_TEST")
        }
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = str(ROOT)  # the checkout this test belongs to, whatever the venv installed
        return env
