"""instances: newest-first indexes for the monitor's list (all, per status, per process)

Revision ID: 0010_monitor
Revises: 0009_studio_drafts
"""
from alembic import op


revision = "0010_monitor"
down_revision = "0009_studio_drafts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index("ix_instances_created", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_instances_status_created", ["status", "created_at", "id"], unique=False)
        batch_op.create_index("ix_instances_process_created", ["process_id", "created_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index("ix_instances_process_created")
        batch_op.drop_index("ix_instances_status_created")
        batch_op.drop_index("ix_instances_created")
