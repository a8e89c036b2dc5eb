"""dashboard: per-image gold-set probabilities of each model version (ROC curves, reliability diagrams)

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "gold_score",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("true_label", sa.String(length=60), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["image.id"]),
        sa.ForeignKeyConstraint(["snapshot_id"], ["gold_snapshot.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_version", "snapshot_id", "image_id"),
    )
    with op.batch_alter_table("gold_score", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gold_score_model_version"), ["model_version"], unique=False)


def downgrade():
    with op.batch_alter_table("gold_score", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gold_score_model_version"))
    op.drop_table("gold_score")
