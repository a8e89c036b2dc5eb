"""The demo (`medal demo`): real pediatric chest X-rays (Kermany et al. 2018), one user per role, a
seeded gold set and the first model, all split by patient so the pool and the gold set are patients
the first model never saw."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import click

from learning.model import load_model
from registry.client import RunRecord
from registry.uris import CHAMPION
from webapp.config import ROOT, DemoUser
from webapp.extensions import db
from webapp.inference import scoring
from webapp.models import GoldItem, Image, User, utcnow
from webapp.services import services
from webapp.training import runs
from webapp.upload import importers


def load(train: bool = True) -> Iterator[str]:
    settings = services().settings
    cfg = settings.demo
    data = cfg.data_path()
    yield from _users(cfg.users)
    parts = _parts(_resolve(cfg.split), cfg.seed, cfg.gold_images, cfg.pool_images, cfg.train_images)
    manifest = importers.default_manifest(data)
    report = importers.from_image_folder(
        data, "train", origin="demo", manifest=manifest, site=cfg.site, only=parts["train"]
    )
    yield f"labeled training images (the first model's training patients): {report.line()}"
    report = importers.from_image_folder(
        data, "pool", origin="demo", manifest=manifest, site=cfg.site, only=parts["pool"]
    )
    yield f"review pool (patients the first model never saw): {report.line()}"
    gold_ids: list[int] = []
    gold = importers.from_image_folder(
        data,
        "pool",
        origin="demo",
        manifest=manifest,
        site=cfg.site,
        only=parts["gold"],
        keep_labels=True,
        ids=gold_ids,
    )
    yield f"gold set (other unseen patients): {gold.line()}; {_seed_gold(gold_ids)} adjudicated"
    if not train:
        return
    if services().registry.version_for(CHAMPION) is None:
        yield _first_model(_resolve(cfg.model), data, parts["train"])
    result = scoring.score()
    yield f"scored {result['images']} pool images with version {result['version']}"


def _resolve(path: str) -> Path:
    return Path(path) if Path(path).is_absolute() else ROOT / path


def _parts(
    split_csv: Path, seed: int, gold_images: int, pool_images: int, train_images: int | None = None
) -> dict[str, set[str]]:
    """The first model's own patient split (train and val parts trained it); its unseen test
    patients are divided, whole patients at a time, into the gold set and the review pool."""
    by_part: dict[str, list[dict]] = defaultdict(list)
    with split_csv.open(newline="") as handle:
        for row in csv.DictReader(handle):
            by_part[row["part"]].append(row)
    patients: dict[str, list[str]] = defaultdict(list)
    for row in by_part["test"]:
        patients[row["patient_id"]].append(row["filename"])
    order = sorted(patients)
    random.Random(seed).shuffle(order)
    gold: set[str] = set()
    pool: set[str] = set()
    for patient in order:
        target = gold if len(gold) < gold_images else pool if len(pool) < pool_images else None
        if target is None:
            break
        target.update(patients[patient])
    train = sorted(row["filename"] for part in ("train", "val") for row in by_part[part])
    if train_images is not None:
        train = random.Random(seed).sample(train, min(train_images, len(train)))
    return {"train": set(train), "gold": gold, "pool": pool}


def _seed_gold(image_ids: list[int]) -> int:
    """The dataset's labels were set by expert graders, so the demo's gold items start adjudicated."""
    seeded = 0
    for image in db.session.execute(db.select(Image).where(Image.id.in_(image_ids))).scalars():
        if image.split == "train":
            continue  # the same bytes came in for training under another patient: never gold
        image.is_gold = True
        if db.session.get(GoldItem, image.id) is None:
            db.session.add(
                GoldItem(image_id=image.id, status="final", final_label=image.reference_label, finalized_at=utcnow())
            )
            seeded += 1
    db.session.commit()
    return seeded


def _first_model(directory: Path, data: Path, trained_on: set[str]) -> str:
    """Register the shipped first model (trained by scripts/train_first_model.py on the train
    patients) as version 1 with its metrics and data manifest; the gate measures it on gold."""
    if not (directory / "spec.json").exists():
        raise RuntimeError(
            f"The first model is missing from {directory}: train it with "
            "`.venv/bin/python scripts/train_first_model.py` (see docs/benchmarks.md)."
        )
    net = load_model(directory)
    metrics = json.loads((directory / "metrics.json").read_text()) if (directory / "metrics.json").exists() else {}
    flat = _test_metrics(metrics)
    record = RunRecord(
        params={
            "backbone": net.spec.backbone,
            "image_size": net.spec.image_size,
            "classes": ",".join(net.spec.class_names),
            "trained_by": "scripts/train_first_model.py",
            "train_size": len(trained_on),
        },
        final_metrics=flat,
        # by content too, as the image store names images: the chat answers "was this image used for training?"
        manifest=[_by_content(data, name) for name in sorted(trained_on)],
        tags={"source": "shipped", "training_log": "models/medal-cxr-v1/train.log"},
    )
    registry = services().registry
    version = registry.register(registry.log_run(net, record, run_name="first-model"), tags={"source": "shipped"})
    runs.bootstrap_champion(version)
    return f"first model: version {version} (shipped, trained on {len(trained_on)} images) is champion"


def _by_content(data: Path, name: str) -> dict[str, str]:
    """A training film's manifest entry; by name only where the demo's data lacks the film (a subset
    of the data set), so that the chat says it cannot tell rather than "not trained on"."""
    path = data / name
    if not path.is_file():
        return {"filename": name}
    return {"filename": name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _test_metrics(metrics: dict) -> dict[str, float]:
    """The held-out test figures of metrics.json (value and 95 % interval) as MLflow metrics."""
    flat: dict[str, float] = {}
    for name, found in (metrics.get("test") or {}).items():
        if isinstance(found, dict) and isinstance(found.get("value"), (int, float)):
            flat[f"test_{name}"] = float(found["value"])
            low, high = found.get("ci95", (None, None))
            if low is not None and high is not None:
                flat[f"test_{name}_ci95_low"], flat[f"test_{name}_ci95_high"] = float(low), float(high)
    for name in ("best_val_auc", "best_val_loss", "seconds", "epochs_run"):
        value = (metrics.get("training") or {}).get(name)
        if isinstance(value, (int, float)):
            flat[f"train_{name}"] = float(value)
    return flat


def logins() -> Iterator[str]:
    for name, spec in services().settings.demo.users.items():
        yield f"  log in as {name} / {spec.password}  ({spec.role})"


def _users(users: dict[str, DemoUser]) -> Iterator[str]:
    for name, spec in users.items():
        user = db.session.execute(db.select(User).filter_by(username=name)).scalar_one_or_none()
        if user is None:
            user = User(username=name, role=spec.role, can_adjudicate=spec.role == "admin")
            user.set_password(spec.password)
            db.session.add(user)
            yield f"user {name} ({spec.role}) created"
        if not user.full_name:  # a name set on the profile page since stays
            user.full_name, user.job_title = spec.full_name or None, spec.job_title or None
    db.session.commit()


@click.command()
@click.option("--skip-train", is_flag=True, help="import data and users only")
@click.option("--logins", "logins_only", is_flag=True, help="only print the demo log-ins")
def demo(skip_train: bool, logins_only: bool) -> None:
    """Load the PneumoniaMNIST demo: users, labeled data, pool, gold set, first model."""
    for line in logins() if logins_only else load(train=not skip_train):
        click.echo(line)
