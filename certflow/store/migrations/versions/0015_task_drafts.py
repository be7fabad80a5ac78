"""task_drafts: a task's form kept without sending it (Mijn CMI's "Save draft")

Revision ID: 0015_task_drafts
Revises: 0014_redeploy_earlier_versions
"""
from alembic import op
import sqlalchemy as sa

import certflow.store.base


revision = "0015_task_drafts"
down_revision = "0014_redeploy_earlier_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_drafts",
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("saved_at", certflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task_id", "username", name=op.f("pk_task_drafts")),
    )


def downgrade() -> None:
    op.drop_table("task_drafts")
