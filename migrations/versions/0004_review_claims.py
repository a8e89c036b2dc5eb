"""review: one label per image under concurrency

A claim row is kept once its image is labeled (state "labeled") or found unshowable, so the
primary key of `claim` stops a second doctor being served the image; a partial unique index on
`label` (every channel but blind gold reads) makes one review label per image a database rule.
Databases that already hold images labeled twice in review keep both rows: the later answers
move to channel "double" (outside the index and out of training), the first answer stands.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

REVIEW_LABEL = "channel NOT IN ('gold', 'double')"


def upgrade():
    with op.batch_alter_table("claim") as batch:
        batch.add_column(sa.Column("state", sa.String(length=10), nullable=False, server_default="held"))
    op.execute(
        sa.text(
            f"UPDATE label SET channel = 'double' WHERE {REVIEW_LABEL} AND id NOT IN "
            f"(SELECT min(id) FROM label WHERE {REVIEW_LABEL} GROUP BY image_id)"
        )
    )
    # labeled images had their claim deleted on submit: each gets the kept claim of its first answer
    op.execute(sa.text("DELETE FROM claim WHERE image_id IN (SELECT image_id FROM label)"))
    op.execute(
        sa.text(
            "INSERT INTO claim (image_id, user_id, expires_at, state) "
            f"SELECT image_id, user_id, created_at, 'labeled' FROM label WHERE {REVIEW_LABEL}"
        )
    )
    op.create_index(
        "uq_label_review_image",
        "label",
        ["image_id"],
        unique=True,
        sqlite_where=sa.text(REVIEW_LABEL),
        postgresql_where=sa.text(REVIEW_LABEL),
    )


def downgrade():
    op.drop_index("uq_label_review_image", table_name="label")
    op.execute("DELETE FROM claim WHERE state <> 'held'")
    with op.batch_alter_table("claim") as batch:
        batch.drop_column("state")
