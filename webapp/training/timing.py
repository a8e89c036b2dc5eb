"""How long a training run has been going and about how long its fine-tune has left: from the run's
own pace once it reports progress, before that from how long past runs of its kind took."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from datetime import datetime

from webapp.extensions import db
from webapp.models import TrainingRun, utcnow

PAST_RUNS = 10  # the latest finished runs of a kind whose durations stand in before a run reports


@dataclass(frozen=True)
class Timing:
    """A running run's clock: seconds since it started, an estimate of what is left (None: nothing
    to estimate from) and what the estimate rests on."""

    elapsed_s: float | None
    left_s: float | None
    basis: str  # "progress", "past runs" or "" (no estimate)

    @property
    def text(self) -> str:
        """ "Running for 4 min 10 s · about 3 min left", as the Training page shows it."""
        parts = []
        if self.elapsed_s is not None:
            parts.append(f"running for {duration(self.elapsed_s)}")
        if self.left_s is not None:
            left = "less than a minute left" if self.left_s < 60 else f"about {round(self.left_s / 60)} min left"
            parts.append(left + (" (from past runs)" if self.basis == "past runs" else ""))
        text = " · ".join(parts)
        return text[:1].upper() + text[1:]

    def to_dict(self) -> dict:
        return asdict(self) | {"text": self.text}


def done_share(progress: dict | None) -> float | None:
    """The share of the planned fine-tune done: finished epochs plus the running epoch's steps."""
    progress = progress or {}
    epoch, planned = progress.get("epoch"), progress.get("max_epochs")
    if not epoch or not planned or planned <= 0:
        return None
    steps, step = progress.get("steps") or 0, progress.get("step") or 0
    return min(1.0, ((epoch - 1) + (step / steps if steps else 0)) / planned)


def estimate(run: TrainingRun, past: list[float], now: datetime | None = None) -> Timing:
    """The clock of a queued or running run. A fine-tune's seconds so far (`elapsed_s` in its
    progress) over the share done give its pace; early stopping can only make it shorter."""
    if run.status != "running" or run.started_at is None:
        return Timing(None, None, "")
    elapsed = max(0.0, ((now or utcnow()) - run.started_at).total_seconds())
    progress = run.progress or {}
    share, fitting = done_share(progress), progress.get("elapsed_s")
    if progress.get("stage") == "training" and share and fitting is not None:
        return Timing(elapsed, fitting * (1 - share) / share, "progress")
    if progress.get("stage") in (None, "preparing") and past:
        return Timing(elapsed, max(0.0, statistics.median(past) - elapsed), "past runs")
    return Timing(elapsed, None, "")


def past_durations(kind: str) -> list[float]:
    """Seconds the latest finished runs of this kind took, start to end."""
    runs = db.session.execute(
        db.select(TrainingRun)
        .where(TrainingRun.kind == kind, TrainingRun.status == "succeeded", TrainingRun.finished_at.is_not(None))
        .order_by(TrainingRun.id.desc())
        .limit(PAST_RUNS)
    ).scalars()
    return [run.duration_s for run in runs if run.duration_s is not None]


def duration(seconds: float) -> str:
    """12 s, 4 min 10 s, 1 h 5 min."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
