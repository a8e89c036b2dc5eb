"""The trust meter: how often doctors agree with the model's predictions, per class and per site, over a
rolling window, with Wilson 95% intervals and a readiness verdict per class that nothing acts on."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import timedelta

from webapp.config import ReadinessRule, TrustSettings
from webapp.extensions import db
from webapp.models import REVIEW_LABEL, Image, Label, Prediction, utcnow

NOT_AUTOMATED = (
    "This page informs; it automates nothing. Every prediction still goes to a doctor, whatever a class's "
    "standing here."
)


@dataclass(frozen=True)
class Agreement:
    """Reviews that answered a prediction, how many confirmed it, and the Wilson 95% interval."""

    reviews: int
    agreed: int
    low: float | None
    high: float | None

    @property
    def rate(self) -> float | None:
        return self.agreed / self.reviews if self.reviews else None

    @classmethod
    def of(cls, agreed: int, reviews: int) -> Agreement:
        if reviews == 0:
            return cls(0, 0, None, None)
        from scipy.stats import binomtest  # here: SciPy took 0.9 s of every `medal` command's start

        interval = binomtest(agreed, reviews).proportion_ci(confidence_level=0.95, method="wilson")
        return cls(reviews, agreed, float(interval.low), float(interval.high))

    def to_dict(self) -> dict:
        return {**asdict(self), "rate": self.rate}


@dataclass(frozen=True)
class Readiness:
    ready: bool
    why: str


@dataclass(frozen=True)
class Standing:
    """One class (overall, or at one site): its agreement and where it stands against its rule."""

    label: str
    agreement: Agreement
    readiness: Readiness

    def to_dict(self) -> dict:
        return {
            "class": self.label,
            **self.agreement.to_dict(),
            "ready": self.readiness.ready,
            "why": self.readiness.why,
        }


@dataclass(frozen=True)
class SiteStanding:
    site: str
    agreement: Agreement
    classes: list[Standing]

    def to_dict(self) -> dict:
        return {
            "site": self.site,
            **self.agreement.to_dict(),
            "classes": [standing.to_dict() for standing in self.classes],
        }


@dataclass(frozen=True)
class TrustReport:
    window_days: int
    since: str  # ISO date-time (UTC) of the window's start
    version: int | None  # only predictions of this model version, or None for every version
    confident_at: float
    overall: Agreement
    confident: Agreement  # confident predictions that doctors confirmed
    classes: list[Standing]
    sites: list[SiteStanding]
    versions: dict[int, int] = field(default_factory=dict)  # model version -> reviews in the window
    note: str = NOT_AUTOMATED

    def to_dict(self) -> dict:
        return {
            "window_days": self.window_days,
            "since": self.since,
            "version": self.version,
            "overall": self.overall.to_dict(),
            "confident": {"threshold": self.confident_at, **self.confident.to_dict()},
            "classes": [standing.to_dict() for standing in self.classes],
            "sites": [site.to_dict() for site in self.sites],
            "versions": {str(version): count for version, count in self.versions.items()},
            "note": self.note,
        }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def readiness(agreement: Agreement, rule: ReadinessRule | None) -> Readiness:
    """Ready when there are enough reviews and the interval's lower bound reaches the threshold:
    a class with 10 of 10 agreeing reviews is not yet known to be reliable."""
    if rule is None:
        return Readiness(False, "no readiness rule for this class in config (trust.ready_for_less_supervision)")
    if agreement.reviews < rule.min_count:
        counted = "1 review" if agreement.reviews == 1 else f"{agreement.reviews} reviews"
        return Readiness(False, f"only {counted} of the {rule.min_count} needed")
    summary = (
        f"{agreement.reviews} reviews, agreement {_fmt(agreement.rate)} [{_fmt(agreement.low)}, {_fmt(agreement.high)}]"
    )
    assert agreement.low is not None  # reviews >= min_count > 0
    if agreement.low >= rule.min_agreement:
        return Readiness(True, f"{summary}; the lower bound is at or above {rule.min_agreement:.2f}: ready")
    return Readiness(False, f"{summary}; the lower bound is below {rule.min_agreement:.2f}: not yet")


def _rows(since, version: int | None):
    """(doctor's label, site, agreed, prediction confidence, model version) of each review in the window
    that answered a prediction. Gold reads never count: the doctor saw no prediction."""
    query = (
        db.select(Label.label, Image.site, Label.agreed, Prediction.confidence, Prediction.model_version)
        .join(Prediction, Prediction.id == Label.prediction_id)
        .join(Image, Image.id == Label.image_id)
        .where(db.text(REVIEW_LABEL), Label.agreed.is_not(None), Label.created_at >= since)
    )
    if version is not None:
        query = query.where(Prediction.model_version == version)
    return db.session.execute(query).all()


def report(settings: TrustSettings, class_names: list[str], version: int | None = None) -> TrustReport:
    """The trust meter over the last `settings.window_days` days. Each review is compared with the
    prediction it answered (the champion serving then); `version` keeps one model version only."""
    from webapp.classes import catalog

    since = utcnow() - timedelta(days=settings.window_days)
    renamed = catalog.aliases()
    by_class: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_site: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_site_class: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    versions: dict[int, int] = defaultdict(int)
    total, confident = [0, 0], [0, 0]
    for label, site, agreed, confidence, model_version in _rows(since, version):
        name, place = catalog.canonical(label, renamed), site or "(no site)"
        hit = int(bool(agreed))
        for counts in (total, by_class[name], by_site[place], by_site_class[(place, name)]):
            counts[0] += hit
            counts[1] += 1
        if confidence >= settings.confident_at:
            confident[0] += hit
            confident[1] += 1
        versions[model_version] += 1
    rules = settings.ready_for_less_supervision

    def standing(name: str, counts: list[int]) -> Standing:
        agreement = Agreement.of(*counts)
        return Standing(name, agreement, readiness(agreement, rules.get(name)))

    names = list(dict.fromkeys([*class_names, *by_class]))  # configured order, then any others seen
    sites = [
        SiteStanding(
            site,
            Agreement.of(*by_site[site]),
            [standing(name, by_site_class[(site, name)]) for name in names if (site, name) in by_site_class],
        )
        for site in sorted(by_site)
    ]
    return TrustReport(
        window_days=settings.window_days,
        since=since.isoformat(timespec="seconds") + "Z",
        version=version,
        confident_at=settings.confident_at,
        overall=Agreement.of(*total),
        confident=Agreement.of(*confident),
        classes=[standing(name, by_class.get(name, [0, 0])) for name in names],
        sites=sites,
        versions=dict(sorted(versions.items())),
    )
