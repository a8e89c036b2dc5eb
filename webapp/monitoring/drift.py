"""Drift by site, age band and sex: per-image statistics measured once (worker job or `medal drift`),
and the report that compares each group with the champion's training data (learning/drift.py)."""

from __future__ import annotations

import copy
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from flask import current_app

from learning import drift as stats
from learning.decoding import load_grayscale
from learning.predict import score_pool
from registry.uris import CHAMPION
from webapp.extensions import db
from webapp.models import (
    REVIEW_LABEL,
    DriftReference,
    Image,
    ImageDriftStats,
    Label,
    Prediction,
    TrainingRun,
    utcnow,
)
from webapp.services import services

log = logging.getLogger(__name__)

DIMENSIONS = ("site", "age_band", "sex")
_CHUNK = 256  # images measured and committed together: a crash keeps what was done


# --- measuring -----------------------------------------------------------------------------------


def reference_population(version: int) -> list[int]:
    """The images a version was trained on: the labeled import (split "train") and, when a training
    run made it, the doctor-labeled images that existed when that run started. Gold never trains."""
    ids = set(db.session.execute(db.select(Image.id).where(Image.split == "train", Image.is_gold.is_(False))).scalars())
    run = db.session.execute(
        db.select(TrainingRun).where(TrainingRun.model_version == version).order_by(TrainingRun.id).limit(1)
    ).scalar_one_or_none()
    if run is not None and run.started_at is not None:
        ids.update(
            db.session.execute(
                db.select(Label.image_id)
                .join(Image, Image.id == Label.image_id)
                .where(db.text(REVIEW_LABEL), Label.created_at <= run.started_at, Image.is_gold.is_(False))
                .where(Label.unsure.is_(False))  # unsure answers never train (labelstore.doctor_examples)
            ).scalars()
        )
    return sorted(ids)


def _net(version: int):
    return services().server.net_for(version) or services().registry.load(version)


def _measure_rows(
    version: int, images: list[Image], projection: stats.Projection | None, reference: bool
) -> tuple[list[dict], stats.Projection]:
    """Score and measure `images` (reads only: the minutes of scoring hold no write lock); returns
    their ImageDriftStats rows and the projection (fitted here for the reference)."""
    net = _net(version)
    bins = services().settings.drift.histogram_bins
    store = services().store
    paths = [str(store.path(image.path)) for image in images]
    scores = score_pool(net, paths)
    embeddings = scores.embeddings
    if embeddings is None:  # score_pool always gives them; PoolScores also serves strategies that need none
        raise RuntimeError("Scoring gave no embeddings to measure drift on.")
    if projection is None:
        projection = stats.Projection.fit(embeddings, services().settings.drift.embedding_components)
    projected = projection.apply(embeddings)
    names = list(net.spec.class_names)
    rows = []
    for image, path, probabilities, features in zip(images, paths, scores.probabilities, projected):
        best = int(np.argmax(probabilities))
        rows.append(
            {
                "image_id": image.id,
                "model_version": version,
                "reference": reference,
                "histogram": [round(float(x), 5) for x in stats.intensity_histogram(load_grayscale(path), bins)],
                "width": image.width,
                "height": image.height,
                "projection": [round(float(x), 5) for x in features],
                "predicted_class": names[best],
                "confidence": float(probabilities[best]),
                "created_at": utcnow(),
            }
        )
    return rows, projection


def _insert(rows: list[dict]) -> None:
    if rows:
        db.session.execute(db.insert(ImageDriftStats), rows)


def _images(ids: list[int]) -> list[Image]:
    if not ids:
        return []
    return list(db.session.execute(db.select(Image).where(Image.id.in_(ids)).order_by(Image.id)).scalars())


def measure(version: int | None = None, limit: int | None = None) -> dict:
    """Measure the champion's reference (once per version) and up to `limit` images that have no
    statistics under it yet (newest first). Safe to repeat: measured images are skipped."""
    started = time.perf_counter()
    cfg = services().settings.drift
    version = version if version is not None else services().registry.version_for(CHAMPION)
    if version is None:
        return {"version": None, "reference": 0, "images": 0, "seconds": 0.0}
    reference_ids = reference_population(version)
    measured_reference = 0
    ref = db.session.get(DriftReference, version)
    if ref is None:
        if not reference_ids:
            return {"version": version, "reference": 0, "images": 0, "seconds": 0.0, "note": "no training images"}
        rng = np.random.default_rng(version)
        size = min(cfg.reference_images, len(reference_ids))
        sample = sorted(int(i) for i in rng.choice(reference_ids, size=size, replace=False))
        # the PCA needs every reference embedding at once; its rows go in with the reference row, in one
        # short write after the scoring (a write begun before it would lock SQLite out for minutes)
        rows, projection = _measure_rows(version, _images(sample), None, reference=True)
        db.session.execute(db.delete(ImageDriftStats).where(ImageDriftStats.model_version == version))
        _insert(rows)
        db.session.add(
            DriftReference(
                model_version=version, images=size, population=len(reference_ids), projection=projection.to_dict()
            )
        )
        db.session.commit()
        measured_reference = size
    else:
        projection = stats.Projection.from_dict(ref.projection)
    done = db.select(ImageDriftStats.image_id).where(ImageDriftStats.model_version == version)
    query = db.select(Image.id).where(Image.id.not_in(done)).order_by(Image.id.desc())
    if reference_ids:
        query = query.where(Image.id.not_in(reference_ids))
    todo = list(db.session.execute(query.limit(limit or cfg.batch_images)).scalars())
    for start in range(0, len(todo), _CHUNK):
        rows, _ = _measure_rows(version, _images(todo[start : start + _CHUNK]), projection, reference=False)
        _insert(rows)
        db.session.commit()
    elapsed = round(time.perf_counter() - started, 2)
    if measured_reference or todo:
        log.info(
            "drift: measured %d reference and %d images for version %s in %.1f s",
            measured_reference,
            len(todo),
            version,
            elapsed,
        )
    return {"version": version, "reference": measured_reference, "images": len(todo), "seconds": elapsed}


def job() -> dict:
    """The worker's scheduled pass (webapp/training/worker.py)."""
    from webapp.training import jobs

    with jobs.cpu_work(), jobs.app_context():
        return measure()


# --- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    stats: dict
    site: str
    age_band: str
    sex: str


def _policy() -> stats.DriftPolicy:
    cfg = services().settings.drift
    return stats.DriftPolicy(cfg.psi_alert, cfg.p_value, cfg.min_images)


def _stat_dict(row: ImageDriftStats) -> dict:
    return {
        "histogram": row.histogram,
        "width": row.width,
        "height": row.height,
        "projection": row.projection,
        "predicted_class": row.predicted_class,
        "confidence": row.confidence,
    }


def _agreement(version: int, since) -> dict[str, dict[str, list[int]]]:
    """Per dimension and group: [agreed, reviewed] of doctors' review answers to this version."""
    bands = services().settings.drift.bands
    query = (
        db.select(Label.agreed, Image.site, Image.patient_age, Image.patient_sex)
        .join(Prediction, Prediction.id == Label.prediction_id)
        .join(Image, Image.id == Label.image_id)
        .where(db.text(REVIEW_LABEL), Prediction.model_version == version, Label.agreed.is_not(None))
    )
    if since is not None:
        query = query.where(Image.created_at >= since)
    counts: dict[str, dict[str, list[int]]] = {d: defaultdict(lambda: [0, 0]) for d in DIMENSIONS}
    for agreed, site, age, sex in db.session.execute(query):
        for dimension, group in zip(DIMENSIONS, (site or "unknown", stats.age_band(age, bands), sex or "unknown")):
            counts[dimension][group][0] += int(bool(agreed))
            counts[dimension][group][1] += 1
    return counts


def _summary(sample: stats.Sample, names: list[str]) -> dict:
    return {
        "intensity_histogram": [round(float(x), 4) for x in sample.histograms.mean(axis=0)] if len(sample) else [],
        "median_width": float(np.median(sample.widths)) if len(sample) else None,
        "median_height": float(np.median(sample.heights)) if len(sample) else None,
        "predicted_class_shares": stats.shares(sample.predicted, names),
        "mean_confidence": round(float(sample.confidence.mean()), 4) if len(sample) else None,
    }


def report(version: int | None = None) -> dict:
    """Every group of every dimension against the champion's reference (or `version`'s, when the
    caller has just read the champion). Reads stored statistics only. The image comparisons are
    made once per state of those statistics (`_state`) and kept; doctors' agreement and the images
    not measured yet, which move with every answer and upload, are counted on every call."""
    version = version if version is not None else services().registry.version_for(CHAMPION)
    days = services().settings.drift.window_days
    since = utcnow() - timedelta(days=days) if days else None
    key = _state(version, since)
    kept = current_app.extensions.setdefault("medal.drift_comparisons", {})  # this app's database only
    compared = kept.get(key)
    if compared is None:
        compared = _compared(version, since)
        kept.clear()  # only the latest state is ever asked for again
        kept[key] = compared
    found = copy.deepcopy(compared)  # callers may change what they are given
    if found["status"] != "measured" or version is None:  # measured: against a champion
        return found
    found["unmeasured_images"] = unmeasured(version)
    policy = _policy()
    agreement = _agreement(version, since)
    totals = {
        dimension: (sum(a for a, _ in reviewed.values()), sum(n for _, n in reviewed.values()))
        for dimension, reviewed in agreement.items()
    }
    found["groups"] = [
        _judged(group, agreement[group["dimension"]].get(group["group"], [0, 0]), totals[group["dimension"]], policy)
        for group in found["groups"]
    ]
    return found


def _state(version: int | None, since) -> tuple:
    """What `_compared` reads, in a few numbers from one query. Drift statistics are only ever added,
    never changed (re-measuring a reference replaces the version's statistics and its reference row
    together), and neither are the images they join, so the statistics' count and newest id move
    whenever the comparisons can; with a window, so does the first image inside it."""
    if version is None:
        return (None,)

    def scalar(*columns, where=()):
        return db.select(*columns).where(*where).scalar_subquery()

    stats_of = (ImageDriftStats.model_version == version,)
    row = db.session.execute(
        db.select(
            scalar(db.func.count(ImageDriftStats.id), where=stats_of),
            scalar(db.func.max(ImageDriftStats.id), where=stats_of),
            scalar(DriftReference.created_at, where=(DriftReference.model_version == version,)),
            scalar(db.func.min(Image.id), where=(Image.created_at >= since,) if since is not None else ()),
        )
    ).one()
    return (version, repr(services().settings.drift), *row)


def _compared(version: int | None, since) -> dict:
    """The report without doctors' agreement or the unmeasured count: each group's images against
    the reference."""
    cfg = services().settings.drift
    policy = _policy()
    bands = cfg.bands
    base = {
        "model_version": version,
        "thresholds": {"psi_alert": cfg.psi_alert, "p_value": cfg.p_value, "min_images": cfg.min_images},
        "correction": "holm",
        "window_days": cfg.window_days,
    }
    ref = db.session.get(DriftReference, version) if version is not None else None
    if ref is None:
        return {**base, "status": "not measured", "reference": None, "groups": [], "unmeasured_images": None}
    reference_rows = db.session.execute(
        db.select(ImageDriftStats).where(ImageDriftStats.model_version == version, ImageDriftStats.reference)
    ).scalars()
    reference = stats.Sample.of([_stat_dict(row) for row in reference_rows])
    query = (
        db.select(ImageDriftStats, Image.site, Image.patient_age, Image.patient_sex)
        .join(Image, Image.id == ImageDriftStats.image_id)
        .where(ImageDriftStats.model_version == version, ImageDriftStats.reference.is_(False))
    )
    if since is not None:
        query = query.where(Image.created_at >= since)
    rows = [
        _Row(_stat_dict(row), site or "unknown", stats.age_band(age, bands), sex or "unknown")
        for row, site, age, sex in db.session.execute(query)
    ]
    names = sorted(set(reference.predicted) | {row.stats["predicted_class"] for row in rows})
    groups = []
    for dimension in DIMENSIONS:
        members: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            members[getattr(row, dimension)].append(row.stats)
        for group in sorted(members):
            groups.append(_group(dimension, group, members[group], reference, policy, names))
    return {
        **base,
        "status": "measured",
        "reference": {
            "model_version": version,
            "images": ref.images,
            "population": ref.population,
            "measured_at": ref.created_at.isoformat() + "Z",
            "embedding_variance_explained": round(sum(ref.projection.get("explained", [])), 4),
            **_summary(reference, names),
        },
        "groups": groups,
        "unmeasured_images": None,  # counted by report() on every call
    }


def _group(dimension, group, members, reference, policy, names) -> dict:
    """One group's images against the reference; `checks` is None for a group too small to test."""
    sample = stats.Sample.of(members)
    enough = len(sample) >= policy.min_images
    return {
        "dimension": dimension,
        "group": group,
        "images": len(sample),
        **_summary(sample, names),
        "checks": stats.compare(reference, sample, policy) if enough else None,
    }


def _judged(group: dict, reviewed: list[int], totals: tuple[int, int], policy: stats.DriftPolicy) -> dict:
    """A compared group with doctors' agreement in it (against all other reviewed images of its
    dimension) and its verdict."""
    checks = group.pop("checks")
    agreed, total = reviewed
    out = {
        **group,
        "agreement": {"agreed": agreed, "reviewed": total, "rate": round(agreed / total, 4) if total else None},
    }
    if checks is None:
        return {**out, "status": "too few images", "drifting": False, "checks": []}
    tested = sum(1 for check in checks if check.test != "psi") + 1
    checks.append(stats.agreement_test(agreed, total, totals[0] - agreed, totals[1] - total, policy, tested))
    drifting = [check.feature for check in checks if check.drifting]
    return {
        **out,
        "status": "drifting" if drifting else "stable",
        "drifting": bool(drifting),
        "drifting_features": drifting,
        "checks": [check.to_dict() for check in checks],
    }


def unmeasured(version: int) -> int:
    """Images the worker has yet to measure under this version (not counting its training data)."""
    done = db.select(ImageDriftStats.image_id).where(ImageDriftStats.model_version == version)
    total = db.session.execute(db.select(db.func.count(Image.id)).where(Image.id.not_in(done))).scalar_one()
    ref = db.session.get(DriftReference, version)
    training_left = (ref.population - ref.images) if ref else 0
    return max(0, int(total) - training_left)


def flagged_sites() -> list[dict]:
    """Sites whose images drift from the champion's training data, for the dashboard's flag."""
    found = report()
    return [
        {
            "site": group["group"],
            "images": group["images"],
            "features": group["drifting_features"],
            "model_version": found["model_version"],
        }
        for group in found["groups"]
        if group["dimension"] == "site" and group["drifting"]
    ]
