"""label_class and class_alias: classes added and renamed at run time

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "label_class",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("display", sa.String(length=80), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["user.id"], name=op.f("fk_label_class_created_by_id_user")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_label_class")),
    )
    op.create_table(
        "class_alias",
        sa.Column("old_name", sa.String(length=60), nullable=False),
        sa.Column("new_name", sa.String(length=60), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("old_name", name=op.f("pk_class_alias")),
    )


def downgrade():
    op.drop_table("class_alias")
    op.drop_table("label_class")
