"""studio_shared_drafts and email_templates: drafts of the fee/VAT tables and email texts,
and the deployed versions of the email texts

Revision ID: 0011_studio_texts
Revises: 0010_monitor
"""
from alembic import op
import sqlalchemy as sa

from certflow.store.base import UTCDateTime


revision = "0011_studio_texts"
down_revision = "0010_monitor"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studio_shared_drafts",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("saved_by", sa.String(length=100), nullable=False),
        sa.Column("saved_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_studio_shared_drafts")),
    )
    op.create_table(
        "email_templates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("deployed_at", UTCDateTime(), nullable=False),
        sa.Column("deployed_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_templates")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_email_templates_name_version")),
    )
    op.create_index(op.f("ix_email_templates_name"), "email_templates", ["name"])


def downgrade() -> None:
    op.drop_index(op.f("ix_email_templates_name"), table_name="email_templates")
    op.drop_table("email_templates")
    op.drop_table("studio_shared_drafts")
