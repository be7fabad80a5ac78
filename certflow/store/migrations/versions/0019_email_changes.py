"""email_changes: a person's own new e-mail address waits for the link mailed to it

Revision ID: 0019_email_changes
Revises: 0018_one_sign_up_per_address
"""
from alembic import op
import sqlalchemy as sa

import certflow.store.base


revision = "0019_email_changes"
down_revision = "0018_one_sign_up_per_address"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_changes",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("new_email", sa.String(length=200), nullable=False),
        sa.Column("created_at", certflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", certflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["username"], ["users.username"],
                                name=op.f("fk_email_changes_username_users")),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_email_changes")),
        sa.UniqueConstraint("username", name=op.f("uq_email_changes_username")),
    )
    with op.batch_alter_table("email_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_email_changes_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("email_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_changes_expires_at"))
    op.drop_table("email_changes")
