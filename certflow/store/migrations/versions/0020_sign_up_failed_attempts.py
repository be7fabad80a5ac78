"""pending_sign_ups.failed_attempts: wrong passwords at a sign-up's link, over its whole life

The link's wrong passwords were counted as failed sign-ins of the address, which count only
within the sign-in window: 5 every 15 minutes, some 480 guesses over a 24-hour link.

Revision ID: 0020_sign_up_failed_attempts
Revises: 0019_email_changes
"""
from alembic import op
import sqlalchemy as sa


revision = "0020_sign_up_failed_attempts"
down_revision = "0019_email_changes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pending_sign_ups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failed_attempts", sa.Integer(), nullable=False,
                                      server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("pending_sign_ups", schema=None) as batch_op:
        batch_op.drop_column("failed_attempts")
