"""pending_sign_ups: one per address (two sign-ups at the same moment left two live links)

Revision ID: 0018_one_sign_up_per_address
Revises: 0017_mail_requests
"""
from alembic import op
import sqlalchemy as sa


revision = "0018_one_sign_up_per_address"
down_revision = "0017_mail_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The newest sign-up of an address is the one that counts: drop the older ones first.
    op.execute(sa.text(
        "DELETE FROM pending_sign_ups WHERE EXISTS (SELECT 1 FROM pending_sign_ups AS newer "
        "WHERE newer.email = pending_sign_ups.email AND (newer.created_at > pending_sign_ups.created_at "
        "OR (newer.created_at = pending_sign_ups.created_at "
        "AND newer.token_hash > pending_sign_ups.token_hash)))"))
    with op.batch_alter_table("pending_sign_ups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_sign_ups_email"))
        batch_op.create_index(batch_op.f("ix_pending_sign_ups_email"), ["email"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("pending_sign_ups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_sign_ups_email"))
        batch_op.create_index(batch_op.f("ix_pending_sign_ups_email"), ["email"], unique=False)
