"""Approvals: the gate run on the gold set, engineers' decisions, promotion, rollback, history."""

from webapp.errors import Problem


class DecisionError(Problem):
    """An approval, rejection or rollback that cannot be done as asked."""
