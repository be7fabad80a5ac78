"""Inbox indexes in queue order (due, priority desc, created, id), with a partial index for
unassigned group work; they replace the (group, due) and (assignee, due) indexes.

Revision ID: 0002_inbox_queue_indexes
Revises: 0001
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002_inbox_queue_indexes"
down_revision = "0001"
branch_labels = None
depends_on = None

_COLUMNS: list[Any] = ["due_at", sa.column("priority").desc(), "created_at", "id"]


def upgrade() -> None:
    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_human_tasks_assignee_due")
        batch_op.drop_index("ix_human_tasks_group_due")
        batch_op.create_index("ix_human_tasks_assignee_queue", ["assignee", *_COLUMNS], unique=False)
        batch_op.create_index("ix_human_tasks_group_queue", ["candidate_group", *_COLUMNS], unique=False)
        batch_op.create_index("ix_human_tasks_unassigned_queue", ["candidate_group", *_COLUMNS], unique=False,
                              postgresql_where=sa.text("assignee IS NULL"), sqlite_where=sa.text("assignee IS NULL"))


def downgrade() -> None:
    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_human_tasks_unassigned_queue")
        batch_op.drop_index("ix_human_tasks_group_queue")
        batch_op.drop_index("ix_human_tasks_assignee_queue")
        batch_op.create_index("ix_human_tasks_group_due", ["candidate_group", "due_at"], unique=False)
        batch_op.create_index("ix_human_tasks_assignee_due", ["assignee", "due_at"], unique=False)
