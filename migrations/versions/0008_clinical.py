"""clinical: clinical data with each study, and the image + clinical data models

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "clinical_record",
        sa.Column("image_id", sa.Integer(), sa.ForeignKey("image.id"), primary_key=True),
        sa.Column("symptoms", sa.String(300)),
        sa.Column("symptom_days", sa.Integer()),
        sa.Column("temperature_c", sa.Float()),
        sa.Column("spo2_pct", sa.Integer()),
        sa.Column("respiratory_rate", sa.Integer()),
        sa.Column("wbc", sa.Float()),
        sa.Column("crp_mg_l", sa.Float()),
        sa.Column("history", sa.Text()),
        sa.Column("entered_by_id", sa.Integer(), sa.ForeignKey("user.id")),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime()),
    )
    op.create_table(
        "clinical_model",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("image_model_version", sa.Integer(), nullable=False),
        sa.Column("mlflow_run_id", sa.String(64)),
        sa.Column("num_train", sa.Integer(), nullable=False),
        sa.Column("num_gold", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("image_metrics", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("decision", sa.String(10)),
        sa.Column("decided_by_id", sa.Integer(), sa.ForeignKey("user.id")),
        sa.Column("decided_at", sa.DateTime()),
        sa.Column("reason", sa.Text()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_clinical_model_image_model_version", "clinical_model", ["image_model_version"])


def downgrade():
    op.drop_index("ix_clinical_model_image_model_version", table_name="clinical_model")
    op.drop_table("clinical_model")
    op.drop_table("clinical_record")
