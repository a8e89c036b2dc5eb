"""reports: issued study report revisions and label amendments

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "study_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("label", sa.String(length=60), nullable=True),
        sa.Column("labeled_by", sa.String(length=170), nullable=True),
        sa.Column("labeled_at", sa.DateTime(), nullable=True),
        sa.Column("prediction_id", sa.Integer(), nullable=True),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["image.id"]),
        sa.ForeignKeyConstraint(["prediction_id"], ["prediction.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("image_id", "revision", name="uq_study_report_revision"),
    )
    with op.batch_alter_table("study_report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_study_report_image_id"), ["image_id"], unique=False)
    op.create_table(
        "label_amendment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=60), nullable=False),
        sa.Column("previous_label", sa.String(length=60), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("amended_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["amended_by_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["image_id"], ["image.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("label_amendment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_label_amendment_image_id"), ["image_id"], unique=False)


def downgrade():
    with op.batch_alter_table("label_amendment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_label_amendment_image_id"))
    op.drop_table("label_amendment")
    with op.batch_alter_table("study_report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_report_image_id"))
    op.drop_table("study_report")
