"""jobs.detached: outbox jobs (a handler declared effects="outbox", such as email/send),
whose task completed when the job was queued, so running one advances no instance

Revision ID: 0013_outbox_jobs
Revises: 0012_studio_draft_revisions
"""
from alembic import op
import sqlalchemy as sa


revision = "0013_outbox_jobs"
down_revision = "0012_studio_draft_revisions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("detached", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("detached")
