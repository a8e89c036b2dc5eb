"""How a doctor signs a report: their full name and job title, set on the profile page or with
`medal users set-name`; the username stands in where no full name is set."""

from __future__ import annotations

from dataclasses import dataclass

from webapp.errors import Problem
from webapp.extensions import db
from webapp.models import User

# the columns' sizes (webapp/models.py User.full_name, User.job_title)
MAX_FULL_NAME = 120
MAX_JOB_TITLE = 80


@dataclass(frozen=True)
class Signer:
    """A name as it reads under a report ("Dr Ana Rossi") and the job title beside it."""

    name: str
    title: str | None = None

    def __str__(self) -> str:
        return f"{self.name}, {self.title}" if self.title else self.name


def of(user: User) -> Signer:
    return Signer(user.full_name or user.username, user.job_title or None)


def _clean(value: str | None, what: str, limit: int) -> str | None:
    """Blank means "not set"; inner runs of spaces collapse, as a name prints on paper."""
    cleaned = " ".join((value or "").split())
    if len(cleaned) > limit:
        raise Problem(f"The {what} must be at most {limit} characters (it has {len(cleaned)}).")
    return cleaned or None


def set_signature(user: User, full_name: str | None, job_title: str | None) -> Signer:
    """Store how `user` signs reports (checked first: nothing is stored when either is too long).
    Not committed; the caller commits. Issued PDFs keep the name they were signed with."""
    name, title = _clean(full_name, "full name", MAX_FULL_NAME), _clean(job_title, "job title", MAX_JOB_TITLE)
    user.full_name, user.job_title = name, title
    db.session.flush()
    return of(user)
