"""crash safety: run leases that do not rely on a pid alone

A running training run holds a lease: a random owner token, an expiry the worker renews while it
runs, and the host, pid and start time of its process, so a reused pid is never taken for the owner.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("training_run") as batch:
        batch.add_column(sa.Column("lease_token", sa.String(32)))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime()))
        batch.add_column(sa.Column("worker_host", sa.String(255)))
        batch.add_column(sa.Column("worker_started_at", sa.Float()))


def downgrade():
    with op.batch_alter_table("training_run") as batch:
        batch.drop_column("worker_started_at")
        batch.drop_column("worker_host")
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_token")
