"""mail_requests: anonymous forms that send mail are limited per address and per client

Revision ID: 0017_mail_requests
Revises: 0016_pending_sign_ups
"""
from alembic import op
import sqlalchemy as sa

import certflow.store.base


revision = "0017_mail_requests"
down_revision = "0016_pending_sign_ups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("ip_hash", sa.String(length=64), nullable=False),
        sa.Column("at", certflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_requests")),
    )
    with op.batch_alter_table("mail_requests", schema=None) as batch_op:
        batch_op.create_index("ix_mail_requests_email_at", ["kind", "email_hash", "at"], unique=False)
        batch_op.create_index("ix_mail_requests_ip_at", ["ip_hash", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mail_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_mail_requests_ip_at")
        batch_op.drop_index("ix_mail_requests_email_at")
    op.drop_table("mail_requests")
