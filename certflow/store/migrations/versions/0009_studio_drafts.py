"""studio_drafts: the process owners' unsaved-to-production diagram drafts

Revision ID: 0009_studio_drafts
Revises: 0008_job_request_id
"""
from alembic import op
import sqlalchemy as sa

from certflow.store.base import UTCDateTime


revision = "0009_studio_drafts"
down_revision = "0008_job_request_id"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studio_drafts",
        sa.Column("process_id", sa.String(length=200), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("saved_by", sa.String(length=100), nullable=False),
        sa.Column("saved_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("process_id", name=op.f("pk_studio_drafts")),
    )


def downgrade() -> None:
    op.drop_table("studio_drafts")
