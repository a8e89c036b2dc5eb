"""pacs: pulled studies (by a keyed hash of the original StudyInstanceUID) and their images

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "pacs_study",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("study_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("instances", sa.Integer(), nullable=False),
        sa.Column("stored", sa.Integer(), nullable=False),
        sa.Column("existing", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("first_pulled_at", sa.DateTime(), nullable=False),
        sa.Column("pulled_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("study_key", name="uq_pacs_study_key"),
    )
    op.create_table(
        "pacs_image",
        sa.Column("image_id", sa.Integer(), sa.ForeignKey("image.id"), primary_key=True),
        sa.Column("study_id", sa.Integer(), sa.ForeignKey("pacs_study.id"), nullable=False),
    )
    with op.batch_alter_table("pacs_image") as batch:
        batch.create_index("ix_pacs_image_study_id", ["study_id"])


def downgrade():
    op.drop_table("pacs_image")
    op.drop_table("pacs_study")
