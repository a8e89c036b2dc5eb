"""The `medal` command line: a Flask CLI group over the app factory."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup

from webapp.extensions import db
from webapp.models import ROLES, User


def _create_app():
    from webapp import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False,
             add_version_option=False, load_dotenv=False)
def main() -> None:
    """medal: active-learning feedback platform for chest X-ray diagnosis."""


def register_commands(app: Flask) -> None:
    app.cli.add_command(web)
    app.cli.add_command(users)
    app.cli.add_command(tokens)
    app.cli.add_command(import_images)
    app.cli.add_command(train)
    app.cli.add_command(score)
    app.cli.add_command(demo)
    app.cli.add_command(worker)
    from webapp.approvals.commands import rollback
    from webapp.training.commands import simulate

    app.cli.add_command(simulate)
    app.cli.add_command(rollback)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn")
def web(host: str, port: int, workers: int, dev: bool) -> None:
    """Serve the web app (gunicorn; the web process never trains)."""
    if dev:
        current_app.run(host=host, port=port, threaded=True, use_reloader=False)
        return
    from gunicorn.app.base import BaseApplication

    app = current_app._get_current_object()

    class Server(BaseApplication):
        def load_config(self):
            for key, value in {"bind": f"{host}:{port}", "workers": workers, "threads": 4,
                               "timeout": 120, "accesslog": "-"}.items():
                self.cfg.set(key, value)

        def load(self):
            return app

    Server().run()


@click.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--adjudicator", is_flag=True, help="may settle disagreements on gold images")
def users_create(username: str, role: str, password: str, adjudicator: bool) -> None:
    if db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none():
        raise click.ClickException(f"User {username!r} already exists.")
    if len(password) < 8:
        raise click.ClickException("The password needs at least 8 characters.")
    user = User(username=username, role=role, can_adjudicate=adjudicator)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo(f"Created {role} {username}.")


@click.group()
def tokens() -> None:
    """Manage API tokens."""


@tokens.command("create")
@click.argument("username")
@click.option("--name", default="cli", help="a note on what the token is for")
def tokens_create(username: str, name: str) -> None:
    """Create a bearer token; it is printed once, on the last line."""
    from webapp.auth import create_token

    user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none()
    if user is None:
        raise click.ClickException(f"No user {username!r}.")
    token = create_token(user, name)
    click.echo(f"Token for {username} ({user.role}); store it now, it is not shown again:")
    click.echo(token)


@click.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "kind", type=click.Choice(["folder", "npz", "dicom"]), default=None,
              help="default: npz for .npz files, dicom for a folder of DICOM files, else folder")
@click.option("--split", type=click.Choice(["train", "pool"]), default="pool", show_default=True,
              help="train: labeled (folder names / npz labels are the classes); pool: to review")
@click.option("--part", default="train", show_default=True, help="npz part: train, val or test")
@click.option("--start", default=0, type=int)
@click.option("--limit", default=None, type=int)
@click.option("--shuffle-seed", default=None, type=int, help="npz: slice a seeded permutation")
def import_images(source: Path, kind: str | None, split: str, part: str, start: int, limit: int | None,
                  shuffle_seed: int | None) -> None:
    """Import images: an ImageFolder tree, a MedMNIST-style npz, or a folder of DICOM files."""
    from webapp import importers

    names = list(current_app.config["MEDAL"]["classes"])
    kind = kind or ("npz" if source.suffix == ".npz" else "folder")
    if kind == "npz":
        report = importers.from_npz(source, part, split, names, start, limit,
                                    keep_labels=split == "train", shuffle_seed=shuffle_seed)
    elif kind == "dicom":
        report = importers.from_dicom_folder(source, split)
    else:
        unknown = {p.name for p in source.iterdir() if p.is_dir()} - set(names) if split == "train" else set()
        if unknown:
            raise click.ClickException(f"Folders {sorted(unknown)} are not classes ({', '.join(names)}).")
        report = importers.from_image_folder(source, split)
    for line in report.rejected[:20]:
        click.echo(f"rejected {line}", err=True)
    click.echo(report.line())


@click.command()
@click.option("--trigger", default="cli", hidden=True)
def train(trigger: str) -> None:
    """Fine-tune now, in this process (the worker does this on its schedule)."""
    from webapp import finetune

    run = finetune.run(finetune.enqueue(trigger))
    if run.status != "succeeded":
        raise click.ClickException(f"Training run {run.id} failed: {run.error}")
    click.echo(f"Training run {run.id} registered model version {run.model_version} "
               f"(best validation AUC {run.metrics['best_val_auc']:.4f}).")


@click.command()
@click.option("--version", type=int, default=None, help="model version (default: the champion)")
def score(version: int | None) -> None:
    """Score the unlabeled pool for the review queue."""
    from webapp import scoring

    result = scoring.score(version)
    click.echo(f"Scored {result['images']} pool images with version {result['version']} "
               f"in {result['seconds']} s.")


@click.command()
def worker() -> None:
    """Run the scheduler: training triggers, queued runs, pool scoring, clean-up."""
    from webapp import worker as background

    try:
        background.run(current_app._get_current_object())
    except background.WorkerAlreadyRunning as error:
        raise click.ClickException(str(error)) from None


@click.command()
@click.option("--skip-train", is_flag=True, help="import data and users only")
@click.option("--logins", is_flag=True, help="only print the demo log-ins")
def demo(skip_train: bool, logins: bool) -> None:
    """Load the PneumoniaMNIST demo: users, labeled data, pool, gold set, first model."""
    from webapp import demo as demo_data

    lines = demo_data.logins() if logins else demo_data.load(train=not skip_train)
    for line in lines:
        click.echo(line)


if __name__ == "__main__":
    sys.exit(main())
