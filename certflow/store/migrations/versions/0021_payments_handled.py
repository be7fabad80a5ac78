"""payments: who linked a payment to an invoice, and who handled it outside certflow, with a note

The office's queue of payments (unmatched, partial, overpaid) had no way out but a payment
that settled its invoice: an overpayment refunded, or money that was not for us, stayed there
for good. A handled payment (handled_at set) leaves the queue; linked_by/linked_at record who
named the invoice of a payment that quoted nothing usable.

Revision ID: 0021_payments_handled
Revises: 0020_sign_up_failed_attempts
"""
from alembic import op
import sqlalchemy as sa

import certflow.store.base


revision = "0021_payments_handled"
down_revision = "0020_sign_up_failed_attempts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("linked_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("linked_at", certflow.store.base.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("handled_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("handled_at", certflow.store.base.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("handled_note", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        for column in ("handled_note", "handled_at", "handled_by", "linked_at", "linked_by"):
            batch_op.drop_column(column)
