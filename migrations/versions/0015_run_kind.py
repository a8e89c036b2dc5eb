"""run kind: a round (upper blocks on stored trunk activations) or the full fine-tune

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ACTIVE = "status IN ('queued', 'running')"


def upgrade():
    # a plain ADD COLUMN (no batch copy of the table, which would lose 0014's expression index on
    # SQLite); the runs before this revision were all full fine-tunes
    op.add_column("training_run", sa.Column("kind", sa.String(8), nullable=False, server_default="full"))


def downgrade():
    # SQLite drops a column by copying the table: the expression index goes first and comes back after
    op.drop_index("uq_training_run_one_active", table_name="training_run")
    with op.batch_alter_table("training_run") as batch:
        batch.drop_column("kind")
    op.create_index(
        "uq_training_run_one_active",
        "training_run",
        [sa.text("(1)")],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )
