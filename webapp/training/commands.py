"""`medal train`, `medal worker` and `medal simulate` (the loop offline with an oracle doctor)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from flask import current_app

from webapp.services import services


@click.command()
@click.option(
    "--data",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="labeled npz in the MedMNIST layout (default: the demo data)",
)
@click.option(
    "--strategies", default="random,least_confidence,margin,entropy,mc_dropout,batch_diverse", show_default=True
)
@click.option("--seeds", default="0,1,2", show_default=True)
@click.option("--rounds", default=8, show_default=True)
@click.option("--batch", default=50, show_default=True, help="labels per round")
@click.option("--seed-size", default=50, show_default=True, help="labels before the first query")
@click.option("--pool-size", default=None, type=int, help="cap the pool (stratified sample of train)")
@click.option("--val-size", default=None, type=int, help="cap the validation split (stratified)")
@click.option("--epochs", default=3, show_default=True, help="fine-tune epochs per round")
@click.option(
    "--reference-epochs",
    default=0,
    show_default=True,
    help="also train on every label for this many epochs, as the ceiling (0: skip)",
)
@click.option("--backbone", default=None, help="default: model.backbone from config")
@click.option("--size", default=None, type=int, help="default: images.size from config")
@click.option("--random-share", default=0.0, show_default=True)
@click.option("--jobs", default=1, show_default=True, help="curves run in this many processes")
@click.option("--threads", default=1, show_default=True, help="torch threads per process")
@click.option("--out", type=click.Path(path_type=Path), default=Path("simulation"), show_default=True)
def simulate(
    data,
    strategies,
    seeds,
    rounds,
    batch,
    seed_size,
    pool_size,
    val_size,
    epochs,
    reference_epochs,
    backbone,
    size,
    random_share,
    jobs,
    threads,
    out,
) -> None:
    """Run active-learning rounds offline against labels from an npz (an oracle doctor); writes a
    CSV and a learning-curve plot."""
    from learning.simulate import SimulationSpec
    from learning.simulate import simulate as run
    from learning.strategies import available

    settings = services().settings
    spec = SimulationSpec(
        data=data or settings.demo.data_path(),
        class_names=settings.class_names,
        strategies=[s.strip() for s in strategies.split(",") if s.strip()],
        seeds=[int(s) for s in seeds.split(",")],
        rounds=rounds,
        batch=batch,
        seed_size=seed_size,
        pool_size=pool_size,
        val_size=val_size,
        epochs=epochs,
        threads=threads,
        backbone=backbone or settings.model.backbone,
        size=size or settings.images.size,
        random_share=random_share,
    )
    unknown = [name for name in spec.strategies if name not in available()]
    if unknown:
        raise click.BadParameter(
            f"unknown {', '.join(unknown)}; choose from {', '.join(available())}", param_hint="--strategies"
        )
    result = run(
        spec, out, report=lambda row: click.echo(json.dumps(row)), reference_epochs=reference_epochs or None, jobs=jobs
    )
    click.echo(
        f"wrote {out / 'learning_curves.csv'} and {out / 'learning_curves.png'} "
        f"({len(result['rows'])} rows, pool of {result['pool']})"
    )


WAIT_SECONDS = 2  # how often `medal train` looks at a run another process executes


@click.command()
@click.option("--trigger", default="cli", hidden=True)
@click.option(
    "--full",
    is_flag=True,
    help="the deeper full fine-tune of every layer (on a GPU when there is one) instead of the round the worker runs",
)
def train(trigger: str, full: bool) -> None:
    """Fine-tune now, in this process: the same round the worker runs on its schedule (the upper
    blocks and the head on stored trunk activations), or with --full every layer. A run already in
    progress covers the request: this waits for it and reports its result. It trains when the cores
    are free of the worker's other heavy jobs (a drift pass, a re-score)."""
    from webapp.inference.threads import cpu_turn
    from webapp.training import runs

    run = runs.enqueue(trigger, kind="full" if full else "round")
    if run.status == "queued":
        try:
            with cpu_turn(services().settings.home):  # after the worker's drift pass or re-score, not beside it
                run = runs.run(run)
        except runs.RunTaken as taken:  # the worker claimed it while this waited for the cores
            run = taken.training
    run = _wait_for(run)
    if run.status != "succeeded":
        raise click.ClickException(f"Training run {run.id} failed: {run.error}")
    metrics = run.metrics or {}
    click.echo(
        f"Training run {run.id} ({metrics.get('kind', run.kind)}, {metrics.get('duration_s', 0):.0f} s) registered "
        f"model version {run.model_version} (validation AUC of the kept weights {metrics['best_val_auc']:.4f})."
    )


def _wait_for(run):
    """A run has one executor: wait until the one that runs it is done (or found dead, as the worker
    finds it: jobs.recover_interrupted marks it failed)."""
    from webapp.extensions import db
    from webapp.training import jobs

    if run.status in ("queued", "running"):
        where = f"pid {run.worker_pid} on {run.worker_host}" if run.worker_pid else "another process"
        click.echo(f"Training run {run.id} is already running ({where}); waiting for it to finish.", err=True)
    while run.status in ("queued", "running"):
        time.sleep(WAIT_SECONDS)
        jobs.recover_interrupted()
        db.session.commit()
        db.session.refresh(run)
    return run


@click.command()
def worker() -> None:
    """Run the scheduler: training triggers, queued runs, pool scoring, clean-up."""
    from webapp.training import worker as background

    try:
        background.run(current_app._get_current_object())  # type: ignore[attr-defined]  # Flask types the proxy as the app
    except background.WorkerAlreadyRunning as error:
        raise click.ClickException(str(error)) from None
