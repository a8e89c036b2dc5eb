"""Labelling activity: labels per day and per doctor, review times, "unsure" answers and skips, the queue,
claims held, agreement between doctors on double-read gold images (Cohen's kappa) and disagreement with
the final label."""

from __future__ import annotations

import base64
import itertools
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import Row

from webapp import charts
from webapp.extensions import db
from webapp.models import REVIEW_LABEL, Claim, GoldItem, Image, Label, Skip, User, utcnow

GOLD_READ = "gold"  # Label.channel of a blind gold read (webapp/gold/goldset.py READ_CHANNEL)


@dataclass(frozen=True)
class DoctorActivity:
    username: str
    labels: int  # every label in the span: review labels and gold reads
    reviews: int  # review labels only
    median_review_ms: float | None
    unsure: int = 0  # review labels answered "unsure" (they never train)
    skips: int = 0  # served images passed on to another doctor


@dataclass(frozen=True)
class PairKappa:
    first: str
    second: str
    images: int  # gold images both read
    agreed: int
    kappa: float | None  # None: undefined (both read every image as one and the same class)


@dataclass(frozen=True)
class AdjudicationDisagreement:
    username: str
    final_reads: int  # this doctor's reads of gold images whose label is final
    disagreed: int  # of them, read differently from the final label
    adjudicated_reads: int  # reads of images an adjudicator settled (the reads disagreed)
    adjudicated_disagreed: int

    @property
    def rate(self) -> float | None:
        return self.disagreed / self.final_reads if self.final_reads else None


@dataclass(frozen=True)
class Activity:
    days: int
    since: date
    per_day: dict[str, dict[str, int]]  # ISO day -> username -> labels that day
    doctors: list[DoctorActivity]
    median_review_ms: float | None
    queue_size: int
    claims_held: int
    kappas: list[PairKappa]
    adjudication: list[AdjudicationDisagreement]
    skips: int = 0  # in the span, all doctors
    chart_svg: str = field(default="", repr=False)  # base64 SVG of labels per day and doctor

    @property
    def total_labels(self) -> int:
        return sum(d.labels for d in self.doctors)


def queue_size() -> int:
    """Pool images awaiting their review label: the review queue's open images (webapp/review/queue.py:
    pool, not gold, no label yet)."""
    labeled = db.select(Label.image_id)
    return db.session.execute(
        db.select(db.func.count())
        .select_from(Image)
        .where(Image.split == "pool", Image.is_gold.is_(False), Image.id.not_in(labeled))
    ).scalar_one()


def claims_held() -> int:
    """Images a doctor holds right now (served, not yet answered, claim not expired)."""
    return db.session.execute(
        db.select(db.func.count()).select_from(Claim).where(Claim.state == "held", Claim.expires_at >= utcnow())
    ).scalar_one()


def _median(values: list[int]) -> float | None:
    return float(statistics.median(values)) if values else None


def _labels_in_span(since) -> Sequence[Row]:
    """(username, created_at, channel, unsure) of every label since `since`."""
    return db.session.execute(
        db.select(User.username, Label.created_at, Label.channel, Label.unsure)
        .join(User, User.id == Label.user_id)
        .where(Label.created_at >= since)
        .order_by(Label.created_at)
    ).all()


def _skips_in_span(since) -> Counter:
    """username -> images skipped since `since`."""
    rows = db.session.execute(
        db.select(User.username, db.func.count(Skip.id))
        .join(User, User.id == Skip.user_id)
        .where(Skip.created_at >= since)
        .group_by(User.username)
    ).all()
    return Counter({username: count for username, count in rows})


def _review_times(since) -> dict[str, list[int]]:
    rows = db.session.execute(
        db.select(User.username, Label.time_spent_ms)
        .join(User, User.id == Label.user_id)
        .where(db.text(REVIEW_LABEL), Label.created_at >= since, Label.time_spent_ms.is_not(None))
    ).all()
    found: dict[str, list[int]] = defaultdict(list)
    for username, spent in rows:
        found[username].append(spent)
    return found


def _gold_reads() -> dict[int, dict[str, str]]:
    """image id -> username -> label, for every gold blind read."""
    from webapp.classes import catalog

    renamed = catalog.aliases()
    rows = db.session.execute(
        db.select(Label.image_id, User.username, Label.label)
        .join(User, User.id == Label.user_id)
        .where(Label.channel == GOLD_READ)
    ).all()
    found: dict[int, dict[str, str]] = defaultdict(dict)
    for image_id, username, label in rows:
        found[image_id][username] = catalog.canonical(label, renamed)
    return found


def kappas(reads: dict[int, dict[str, str]]) -> list[PairKappa]:
    """Cohen's kappa for each pair of doctors over the gold images both read."""
    from sklearn.metrics import cohen_kappa_score  # here: scikit-learn took 0.6 s of every `medal` command's start

    doctors = sorted({name for by_doctor in reads.values() for name in by_doctor})
    found = []
    for first, second in itertools.combinations(doctors, 2):
        both = [(r[first], r[second]) for r in reads.values() if first in r and second in r]
        if not both:
            continue
        a, b = [x for x, _ in both], [y for _, y in both]
        # one class throughout on both sides: chance agreement is 1 and kappa is 0/0
        kappa = None if len(set(a) | set(b)) < 2 else float(cohen_kappa_score(a, b))
        found.append(PairKappa(first, second, len(both), sum(x == y for x, y in both), kappa))
    return found


def adjudication(reads: dict[int, dict[str, str]]) -> list[AdjudicationDisagreement]:
    from webapp.classes import catalog

    renamed = catalog.aliases()
    finals = db.session.execute(
        db.select(GoldItem.image_id, GoldItem.final_label, GoldItem.adjudicated_by_id).where(GoldItem.status == "final")
    ).all()
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for image_id, final_label, adjudicator in finals:
        final = catalog.canonical(final_label, renamed)
        for username, label in reads.get(image_id, {}).items():
            row = counts[username]
            wrong = int(label != final)
            row[0] += 1
            row[1] += wrong
            if adjudicator is not None:
                row[2] += 1
                row[3] += wrong
    return [AdjudicationDisagreement(name, *row) for name, row in sorted(counts.items())]


def activity(days: int) -> Activity:
    """The last `days` days of labelling, and the queue and claims as they are now."""
    today = utcnow().date()
    since_day = today - timedelta(days=days - 1)
    since = datetime.combine(since_day, time.min)
    per_day: dict[str, Counter] = defaultdict(Counter)
    labels: Counter = Counter()
    reviews: Counter = Counter()
    unsure: Counter = Counter()
    for username, created_at, channel, was_unsure in _labels_in_span(since):
        per_day[created_at.date().isoformat()][username] += 1
        labels[username] += 1
        if channel not in ("gold", "double"):
            reviews[username] += 1
            unsure[username] += int(bool(was_unsure))
    times = _review_times(since)
    skips = _skips_in_span(since)
    doctors = [
        DoctorActivity(name, labels[name], reviews[name], _median(times.get(name, [])), unsure[name], skips[name])
        for name in sorted(set(labels) | set(skips))  # a doctor who only skipped is active too
    ]
    day_names = [(since_day + timedelta(days=i)).isoformat() for i in range(days)]
    reads = _gold_reads()
    per_day_plain = {day: dict(counts) for day, counts in sorted(per_day.items())}
    return Activity(
        days=days,
        since=since_day,
        per_day=per_day_plain,
        doctors=doctors,
        median_review_ms=_median([t for values in times.values() for t in values]),
        queue_size=queue_size(),
        claims_held=claims_held(),
        kappas=kappas(reads),
        adjudication=adjudication(reads),
        skips=sum(skips.values()),
        chart_svg=base64.b64encode(charts.stacked_bars(per_day_plain, day_names).encode()).decode(),
    )
