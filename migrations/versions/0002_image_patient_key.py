"""image.patient_key: a keyed pseudonym of the patient, for splits by patient

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("image") as batch:
        batch.add_column(sa.Column("patient_key", sa.String(length=40), nullable=True))
        batch.create_index("ix_image_patient_key", ["patient_key"])


def downgrade():
    with op.batch_alter_table("image") as batch:
        batch.drop_index("ix_image_patient_key")
        batch.drop_column("patient_key")
