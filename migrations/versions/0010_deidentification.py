"""deidentification: what was done to each DICOM image's header (PS3.15 Annex E)

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "deidentification",
        sa.Column("image_id", sa.Integer(), sa.ForeignKey("image.id"), primary_key=True),
        sa.Column("profile", sa.String(length=120), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("method", sa.String(length=200), nullable=False),
        sa.Column("method_codes", sa.JSON(), nullable=False),
        sa.Column("patient_identity_removed", sa.String(length=3), nullable=False),
        sa.Column("library", sa.String(length=120), nullable=False),
        sa.Column("study_uid", sa.String(length=64)),
        sa.Column("series_uid", sa.String(length=64)),
        sa.Column("sop_uid", sa.String(length=64)),
        sa.Column("view_position", sa.String(length=16)),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_deidentification_study_uid", "deidentification", ["study_uid"])


def downgrade():
    op.drop_index("ix_deidentification_study_uid", table_name="deidentification")
    op.drop_table("deidentification")
