"""message buffering: a message published before anyone waits is kept with a time-to-live

Revision ID: 0004_message_buffer
Revises: 0003_accounts
"""
from alembic import op
import sqlalchemy as sa
import certflow.store.base


revision = "0004_message_buffer"
down_revision = "0003_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("correlation_key", sa.String(length=400), nullable=True))
        batch_op.add_column(sa.Column("expires_at", certflow.store.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_messages_buffered", ["name", "correlation_key", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_buffered")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("correlation_key")
