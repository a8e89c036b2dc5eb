"""Every kind of event the history records, with the words the history shows for it."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """The one list of audited kinds: the writer takes only these, and the history filters by them."""

    LABEL = "label"
    SKIP = "skip"
    CLASS = "class"
    USER_CREATED = "user_created"
    ROLE_CHANGED = "role_changed"
    USER_DEACTIVATED = "user_deactivated"
    ACCOUNT_LOCKED = "account_locked"
    TOKEN_CREATED = "token_created"
    TOKEN_REVOKED = "token_revoked"
    GATE = "gate"
    APPROVAL = "approval"
    REJECTION = "rejection"
    PROMOTION = "promotion"
    ROLLBACK = "rollback"
    RECOVERY = "recovery"
    RESTORE = "restore"
    REPORT_AMENDED = "report_amended"
    FUSION_CANDIDATE = "fusion_candidate"
    FUSION_APPROVED = "fusion_approved"
    FUSION_REJECTED = "fusion_rejected"
    PACS_PULL = "pacs_pull"
    PACS_PUSH = "pacs_push"

    @property
    def what(self) -> str:
        """As the history page and the API's `what` name it."""
        return WHAT[self]


WHAT: dict[Kind, str] = {
    Kind.LABEL: "label",
    Kind.SKIP: "image skipped in review",
    Kind.CLASS: "class change",
    Kind.USER_CREATED: "user created",
    Kind.ROLE_CHANGED: "role change",
    Kind.USER_DEACTIVATED: "user deactivated",
    Kind.ACCOUNT_LOCKED: "log-in locked",
    Kind.TOKEN_CREATED: "token created",
    Kind.TOKEN_REVOKED: "token revoked",
    Kind.GATE: "gate run",
    Kind.APPROVAL: "approval",
    Kind.REJECTION: "rejection",
    Kind.PROMOTION: "promotion",
    Kind.ROLLBACK: "rollback",
    Kind.RECOVERY: "interrupted training run",
    Kind.RESTORE: "restore from a backup",
    Kind.REPORT_AMENDED: "report amended",
    Kind.FUSION_CANDIDATE: "image + clinical data model fitted",
    Kind.FUSION_APPROVED: "image + clinical data model approved",
    Kind.FUSION_REJECTED: "image + clinical data model rejected",
    Kind.PACS_PULL: "PACS pull",
    Kind.PACS_PUSH: "PACS push",
}
if missing := set(Kind) - set(WHAT):  # a kind the history could not name: stop at import
    raise RuntimeError(f"webapp/audit/kinds.py: no words for {sorted(missing)}")

MODEL_KINDS = (Kind.GATE, Kind.APPROVAL, Kind.REJECTION, Kind.PROMOTION, Kind.ROLLBACK)
ALIAS_KINDS = (Kind.PROMOTION, Kind.ROLLBACK)  # the alias changes, written as an intent and a completion
