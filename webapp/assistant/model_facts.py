"""Facts about the model behind a prediction that the chat states: its errors on the gold set, whether
its training data held the image, and where the evidence for another class lies."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from assistant.facts import GoldError, TrainingUse
from webapp.classes import catalog
from webapp.extensions import db
from webapp.inference import explanations
from webapp.models import GateReport, Image, Prediction
from webapp.services import services

log = logging.getLogger(__name__)
MAX_LINEAGE = 20  # versions walked back through parent_version tags (a guard against a loop in the tags)


def gold_errors(version: int) -> tuple[list[GoldError], int | None]:
    """The version's confusions on the gold set, most frequent first, from the latest gate run that
    measured it (as candidate, or as the champion a later candidate was compared with), and the number
    of gold studies; ([], None) when it was never measured."""
    metrics = None
    for report in db.session.execute(
        db.select(GateReport)
        .where((GateReport.model_version == version) | (GateReport.champion_version == version))
        .order_by(GateReport.id.desc())
    ).scalars():
        metrics = report.candidate_metrics if report.model_version == version else report.champion_metrics
        if metrics and metrics.get("n"):
            break
        metrics = None
    if metrics is None or not metrics.get("confusion"):
        return [], None
    renamed = catalog.aliases()
    names = [renamed.get(name, name) for name in metrics["per_class"]]  # the confusion matrix's order
    errors = [
        GoldError(names[truth], names[called], int(count))
        for truth, row in enumerate(metrics["confusion"])
        for called, count in enumerate(row)
        if truth != called and count
    ]
    return sorted(errors, key=lambda e: -e.count), int(metrics["n"])


def training_use(image: Image, version: int) -> TrainingUse:
    """Whether the image is in the training manifest of the version or of the versions it was
    fine-tuned from (a fine-tune starts from its parent's weights). A manifest that lists files by
    name only (an older demo) cannot say: those versions are `unknown`."""
    parents = {info.version: info.tags.get("parent_version") for info in services().registry.versions()}
    used: list[int] = []
    checked: list[int] = []
    unknown: list[int] = []
    current: int | None = version
    while current is not None and len(checked) + len(unknown) < MAX_LINEAGE:
        hashes = _trained_hashes(current)
        if hashes is None:
            unknown.append(current)
        else:
            checked.append(current)
            if image.sha256 in hashes:
                used.append(current)
        parent = parents.get(current)
        current = int(parent) if parent and parent.isdigit() else None
    return TrainingUse(version, tuple(used), tuple(checked), tuple(unknown))


@functools.lru_cache(maxsize=32)
def _trained_hashes_of(tracking_uri: str, version: int) -> frozenset[str] | None:
    # a version's manifest never changes: read once per process and version
    manifest = services().registry.training_manifest(version)
    if not manifest or not all("sha256" in entry for entry in manifest):
        return None
    return frozenset(entry["sha256"] for entry in manifest)


def _trained_hashes(version: int) -> frozenset[str] | None:
    return _trained_hashes_of(services().registry.tracking_uri, version)


def evidence_for(prediction: Prediction) -> Callable[[str], str | None]:
    """The heat map's location for another class of the prediction, computed when an answer asks."""

    def located(class_name: str) -> str | None:
        try:
            return explanations.location_for(prediction, class_name)
        except Exception:  # the answer then says the page's heat map is for the top class only
            log.exception("no heat map for another class of prediction %s", prediction.id)
            return None

    return located
