"""drift: a champion's reference statistics and per-image drift statistics

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "drift_reference",
        sa.Column("model_version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("projection", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("model_version"),
    )
    op.create_table(
        "image_drift_stats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("reference", sa.Boolean(), nullable=False),
        sa.Column("histogram", sa.JSON(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("projection", sa.JSON(), nullable=False),
        sa.Column("predicted_class", sa.String(60), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["image.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("image_id", "model_version", name="uq_drift_stats"),
    )
    with op.batch_alter_table("image_drift_stats") as batch:
        batch.create_index("ix_image_drift_stats_image_id", ["image_id"])
        batch.create_index("ix_image_drift_stats_model_version", ["model_version"])


def downgrade():
    with op.batch_alter_table("image_drift_stats") as batch:
        batch.drop_index("ix_image_drift_stats_model_version")
        batch.drop_index("ix_image_drift_stats_image_id")
    op.drop_table("image_drift_stats")
    op.drop_table("drift_reference")
