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


def upgrade():
    with op.batch_alter_table("training_run") as batch:
        # runs before this revision were all full fine-tunes
        batch.add_column(sa.Column("kind", sa.String(8), nullable=False, server_default="full"))


def downgrade():
    with op.batch_alter_table("training_run") as batch:
        batch.drop_column("kind")
