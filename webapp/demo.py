"""The demo: real PneumoniaMNIST images, one user per role, a seeded gold set, a first model."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from flask import current_app

from webapp import finetune, importers, scoring
from webapp.config import ROOT
from webapp.extensions import db
from webapp.models import GoldItem, Image, User, utcnow


def load(train: bool = True) -> Iterator[str]:
    settings = current_app.config["MEDAL"]
    cfg, names = settings["demo"], list(settings["classes"])
    data = Path(cfg["data"]) if Path(cfg["data"]).is_absolute() else ROOT / cfg["data"]
    yield from _users(cfg["users"])
    # The official test split stays out of the app: it is for benchmarks only.
    seed = int(cfg["seed"])
    report = importers.from_npz(data, "train", "train", names, 0, int(cfg["train_images"]), origin="demo",
                                shuffle_seed=seed)
    yield f"labeled training images: {report.line()}"
    report = importers.from_npz(data, "train", "pool", names, int(cfg["train_images"]),
                                int(cfg["pool_images"]), origin="demo", keep_labels=False,
                                shuffle_seed=seed)
    yield f"review pool: {report.line()}"
    gold_ids: list[int] = []
    report = importers.from_npz(data, "val", "pool", names, 0, int(cfg["gold_images"]), origin="demo",
                                gold_ids=gold_ids, shuffle_seed=seed)
    yield f"gold set: {report.line()}; {_seed_gold(gold_ids)} adjudicated"
    if not train:
        return
    if current_app.extensions["medal"].registry.version_for("champion") is None:
        run = finetune.run(finetune.enqueue("demo"))
        if run.status != "succeeded":
            raise RuntimeError(f"Demo training failed: {run.error}")
        yield f"first model: version {run.model_version} is champion (best validation AUC " \
              f"{run.metrics['best_val_auc']:.4f}, {run.metrics['duration_s']} s)"
    result = scoring.score()
    yield f"scored {result['images']} pool images with version {result['version']}"


def logins() -> Iterator[str]:
    for name, spec in current_app.config["MEDAL"]["demo"]["users"].items():
        yield f"  log in as {name} / {spec['password']}  ({spec['role']})"


def _users(users: dict) -> Iterator[str]:
    for name, spec in users.items():
        if db.session.execute(db.select(User).filter_by(username=name)).scalar_one_or_none() is None:
            user = User(username=name, role=spec["role"], can_adjudicate=spec["role"] == "admin")
            user.set_password(spec["password"])
            db.session.add(user)
            yield f"user {name} ({spec['role']}) created"
    db.session.commit()


def _seed_gold(image_ids: list[int]) -> int:
    """Dataset labels were set by expert graders, so the demo's gold items start adjudicated."""
    seeded = 0
    for image in db.session.execute(db.select(Image).where(Image.id.in_(image_ids))).scalars():
        image.is_gold = True
        if db.session.get(GoldItem, image.id) is None:
            db.session.add(GoldItem(image_id=image.id, status="final", final_label=image.reference_label,
                                    finalized_at=utcnow()))
            seeded += 1
    db.session.commit()
    return seeded
