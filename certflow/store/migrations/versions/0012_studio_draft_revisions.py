"""studio_drafts.revision and studio_shared_drafts.revision: optimistic concurrency for drafts
(a save carrying an older revision than the saved one is refused instead of overwriting it)

Revision ID: 0012_studio_draft_revisions
Revises: 0011_studio_texts
"""
from alembic import op
import sqlalchemy as sa


revision = "0012_studio_draft_revisions"
down_revision = "0011_studio_texts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("studio_drafts") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), server_default="1", nullable=False))
    with op.batch_alter_table("studio_shared_drafts") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("studio_shared_drafts") as batch:
        batch.drop_column("revision")
    with op.batch_alter_table("studio_drafts") as batch:
        batch.drop_column("revision")
