"""jobs.request_id: the HTTP request a job came from, for following it through the logs

Revision ID: 0008_job_request_id
Revises: 0007_inbox_documents
"""
from alembic import op
import sqlalchemy as sa


revision = "0008_job_request_id"
down_revision = "0007_inbox_documents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("request_id")
