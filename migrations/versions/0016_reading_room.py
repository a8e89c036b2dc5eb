"""the reading room: findings, impression, comment and "unsure" on a label; skips; the signing
doctor's full name and job title; default class display names capitalised

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

LABEL_COLUMNS = ("findings", "impression", "comment", "unsure")
USER_COLUMNS = ("full_name", "job_title")


def upgrade():
    # plain ADD COLUMNs: a batch copy of `label` could lose its partial unique index on SQLite
    op.add_column("label", sa.Column("findings", sa.Text()))
    op.add_column("label", sa.Column("impression", sa.Text()))
    op.add_column("label", sa.Column("comment", sa.Text()))
    op.add_column("label", sa.Column("unsure", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("user", sa.Column("full_name", sa.String(120)))
    op.add_column("user", sa.Column("job_title", sa.String(80)))
    op.create_table(
        "skip",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["image.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_skip_image_id", "skip", ["image_id"])
    op.create_index("ix_skip_user_id", "skip", ["user_id"])
    # default display names read as names: "bacterial pneumonia" -> "Bacterial pneumonia"
    op.execute(
        "UPDATE label_class SET display = upper(substr(display, 1, 1)) || substr(display, 2) "
        "WHERE display = replace(name, '_', ' ')"
    )


def downgrade():
    op.drop_index("ix_skip_user_id", table_name="skip")
    op.drop_index("ix_skip_image_id", table_name="skip")
    op.drop_table("skip")
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+, PostgreSQL): no table copy, the indexes stay
    for column in USER_COLUMNS:
        op.drop_column("user", column)
    for column in LABEL_COLUMNS:
        op.drop_column("label", column)
