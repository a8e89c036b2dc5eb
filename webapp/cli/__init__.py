"""The `medal` command line: a Flask CLI group over the app factory; each area brings its commands.
`medal web` is here, `medal demo` and the demo data in demo.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup

BACKGROUND_COMMANDS = {"worker", "train", "score", "drift", "simulate"}  # run at inference.worker.nice
# torch's OpenMP threads sleep while they wait, as ONNX Runtime's do (learning/engine.py). Spinning,
# two processes of two threads on two cores ran a round's training steps 3.5-5x slower than sleeping;
# alone, the two are even (docs/benchmarks.md, "OpenMP threads that sleep"). libgomp reads this once,
# when torch loads it, so it is set here, before anything brings torch; an operator's own value stands.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _create_app():
    from webapp import create_app
    from webapp.config import SettingsError

    try:
        return create_app()
    except SettingsError as error:  # a typo in config.yaml stops medal here, not in a worker job
        click.echo(str(error), err=True)
        sys.exit(2)


@click.group(
    cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False, load_dotenv=False
)
def main() -> None:
    """medal: active-learning feedback platform for chest X-ray diagnosis."""
    from webapp.inference import threads

    # before the command runs: `medal web` takes the web processes' threads (its gunicorn workers are
    # forked from here), every other command the worker's
    command = click.get_current_context().invoked_subcommand
    role: Literal["web", "worker"] = "web" if command == "web" else "worker"
    settings = current_app.extensions["medal"].settings
    threads.apply(settings, role)
    if command in BACKGROUND_COMMANDS:  # training, scoring and drift never take the CPU from review
        threads.lower_priority(settings.inference.worker.nice)


def register_commands(app: Flask) -> None:
    from webapp.approvals.commands import rollback
    from webapp.auth.commands import tokens, users
    from webapp.backup.commands import backup, restore
    from webapp.classes.commands import classes
    from webapp.cli.demo import demo
    from webapp.inference.commands import score
    from webapp.integration.commands import pacs
    from webapp.integration.fhir_commands import fhir
    from webapp.monitoring.commands import drift
    from webapp.training.commands import simulate, train, worker
    from webapp.upload.commands import import_images

    for command in (
        web,
        demo,
        users,
        tokens,
        classes,
        import_images,
        train,
        score,
        worker,
        simulate,
        rollback,
        backup,
        restore,
        drift,
        pacs,
        fhir,
    ):
        app.cli.add_command(command)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn")
def web(host: str, port: int, workers: int, dev: bool) -> None:
    """Serve the web app (gunicorn; the web process never trains)."""
    from webapp.assistant import chat

    app = current_app._get_current_object()  # type: ignore[attr-defined]  # Flask types the proxy as the app
    if dev:
        chat.warm_up(app)  # the first chat answer must not wait for the sentence encoder
        app.run(host=host, port=port, threaded=True, use_reloader=False)
        return
    from gunicorn.app.base import BaseApplication

    settings = current_app.extensions["medal"].settings
    options = gunicorn_options(host, port, workers, Path(app.config["MEDAL_HOME"]), settings.web.keepalive_seconds)

    class Server(BaseApplication):
        def load_config(self):
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return app

    Server().run()


def gunicorn_options(host: str, port: int, workers: int, home: Path, keepalive_seconds: int) -> dict[str, object]:
    """gunicorn's settings for one `medal web`. Its control socket (gunicornc) is the instance's own,
    under MEDAL_HOME and named by the port: gunicorn's default, ~/.gunicorn/gunicorn.ctl, is one per
    user, and a second instance on the host (medal-web@8002 beside @8001) took the first one's over.
    An idle connection stays open `web.keepalive_seconds` (config.yaml says why)."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": 4,
        "timeout": 120,
        "keepalive": keepalive_seconds,
        "accesslog": "-",
        "control_socket": str(home / "run" / f"gunicorn-{port}.ctl"),
        "post_worker_init": warm_worker,
    }


def warm_worker(worker: Any) -> None:
    """gunicorn's post_worker_init: each web process, once forked, loads the assistant's sentence encoder
    in the background, so that the first chat answer does not wait for it (a thread started in the
    master would not survive the fork)."""
    from webapp.assistant import chat

    chat.warm_up(worker.wsgi)
