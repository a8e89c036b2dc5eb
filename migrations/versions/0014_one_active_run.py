"""one active run: at most one training run queued or running, held by a unique partial index

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ACTIVE = "status IN ('queued', 'running')"


def upgrade():
    # requests that raced before this index could queue several runs: the earliest covers the rest
    op.execute(
        sa.text(
            "UPDATE training_run SET status = 'failed', "
            "error = 'Not run: an earlier queued or running run covered this request.' "
            f"WHERE {ACTIVE} AND id > (SELECT min(id) FROM training_run WHERE {ACTIVE})"
        )
    )
    # every active row has the same key (1), so a second one is a unique violation
    op.create_index(
        "uq_training_run_one_active",
        "training_run",
        [sa.text("(1)")],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )


def downgrade():
    op.drop_index("uq_training_run_one_active", table_name="training_run")
