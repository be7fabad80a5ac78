"""pending_sign_ups: a candidate's sign-up waits for the link in its mail to be followed

Revision ID: 0016_pending_sign_ups
Revises: 0015_task_drafts
"""
from alembic import op
import sqlalchemy as sa

import certflow.store.base


revision = "0016_pending_sign_ups"
down_revision = "0015_task_drafts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_sign_ups",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("address", sa.JSON(), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", certflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", certflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_pending_sign_ups")),
    )
    with op.batch_alter_table("pending_sign_ups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pending_sign_ups_email"), ["email"], unique=False)
        batch_op.create_index(batch_op.f("ix_pending_sign_ups_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pending_sign_ups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_sign_ups_expires_at"))
        batch_op.drop_index(batch_op.f("ix_pending_sign_ups_email"))
    op.drop_table("pending_sign_ups")
