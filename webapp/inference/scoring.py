"""Scoring the unlabeled pool once per model version; the review queue reads the stored ranks."""

from __future__ import annotations

import logging
import time

import numpy as np

from learning import strategies
from learning.engine import load_engine
from learning.predict import score_pool
from learning.strategies import PoolScores
from registry.uris import CHAMPION
from webapp import labelstore
from webapp.extensions import db
from webapp.gold import goldset
from webapp.inference import predictions
from webapp.models import Prediction, QueryScore
from webapp.processes import pause_point
from webapp.services import services
from webapp.training import recipe

log = logging.getLogger(__name__)


def score(version: int | None = None) -> dict:
    """Predict every open pool image with `version` (the champion by default) and store, for
    every strategy, each image's score and rank, so a strategy switch needs no recompute.

    Crash-safe: the old scores' removal, the predictions and every new score are one transaction,
    so a version's scores are complete or absent, never half there (a kill -9 rolls it all back and
    the worker scores the version again)."""
    started = time.perf_counter()
    registry, settings = services().registry, services().settings
    version = version if version is not None else registry.version_for(CHAMPION)
    if version is None:
        raise RuntimeError("No champion to score with: train a first model (`medal train`).")
    pool = labelstore.pool_images(services().store)
    al = settings.active_learning
    scores, model_names = _pool_scores(version, [item.path for item in pool], al.mc_dropout_passes)
    ids = [item.image_id for item in pool]
    db.session.execute(db.delete(QueryScore).where(QueryScore.model_version == version))
    _store_predictions(ids, version, scores.probabilities, model_names)
    # classes still being learned get a share of every batch: images the model thinks may show them
    learning = [
        model_names.index(name)
        for name in goldset.learning_classes(services().class_names, settings.gate.min_class_gold)
        if name in model_names
    ]
    # sites with fewer films to train on than one batch: cold start looks for their typical films
    known = labelstore.training_films_per_site()
    new = np.array([known.get(item.site, 0) < al.batch_size for item in pool], dtype=bool)
    rows: list[dict] = []
    for name in strategies.available():
        order, values = strategies.rank(
            name, scores, batch=al.batch_size, random_share=al.random_share, seed=version, new=new
        )
        if learning and al.learning_class_share > 0:
            by_index = dict(zip(order.tolist(), values.tolist()))
            order = strategies.prioritise_classes(
                order, scores.probabilities, learning, batch=al.batch_size, share=al.learning_class_share
            )
            values = np.asarray([by_index[i] for i in order.tolist()])
        rows.extend(
            {
                "image_id": ids[index],
                "model_version": version,
                "strategy": name,
                "score": float(value),
                "rank": position,
            }
            for position, (index, value) in enumerate(zip(order.tolist(), values.tolist()))
        )
    if rows:
        db.session.execute(db.insert(QueryScore), rows)
    pause_point("scoring:rows-written")  # test hook: every row written, nothing committed
    db.session.commit()
    elapsed = time.perf_counter() - started
    log.info("scored %d pool images with version %s in %.1f s", len(ids), version, elapsed)
    return {"version": version, "images": len(ids), "seconds": round(elapsed, 2)}


def _pool_scores(version: int, paths: list[str], mc_passes: int) -> tuple[PoolScores, list[str]]:
    """The pool's scores from the trunk activations rounds keep, where the version can be cut where
    rounds cut it (inference.pool_scoring); otherwise from the whole network (ONNX Runtime where
    the version has an export, loaded here when the server could not: its error stands)."""
    registry, settings = services().registry, services().settings
    if settings.inference.pool_scoring == "stored_activations":
        net = registry.load(version)
        stored = recipe.stored_scores(net, paths, settings, mc_passes)
        if stored is not None:
            return stored, net.spec.class_names
    engine = services().server.engine_for(version) or load_engine(
        registry.model_dir(version), prefer=settings.inference.engine
    )
    return score_pool(engine, paths, mc_passes=mc_passes), engine.spec.class_names


def _store_predictions(ids: list[int], version: int, probabilities: np.ndarray, names: list[str]) -> None:
    """A prediction per pool image for this version, so the review page shows it at once."""
    done = set(
        db.session.execute(
            db.select(Prediction.image_id).where(
                Prediction.model_version == version, Prediction.image_id.in_(ids) if ids else False
            )
        ).scalars()
    )
    rows = [
        {"image_id": image_id, **predictions.prediction_fields(version, probs, names)}
        for image_id, probs in zip(ids, probabilities)
        if image_id not in done
    ]
    if rows:
        db.session.execute(db.insert(Prediction), rows)
