"""escalation: per-task escalation level, next step and escalation inbox on human_tasks

Revision ID: 0006_escalation
Revises: 0005_einvoice_customers
"""
from alembic import op
import sqlalchemy as sa
import certflow.store.base


revision = '0006_escalation'
down_revision = '0005_einvoice_customers'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('escalation_level', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('next_escalation_at', certflow.store.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('escalated_to', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('escalated_at', certflow.store.base.UTCDateTime(timezone=True), nullable=True))
    # Open tasks of older versions are escalated too: their next step is due at their due
    # time (the sweep then applies the version's policy, or the default one).
    op.execute("UPDATE human_tasks SET next_escalation_at = due_at WHERE due_at IS NOT NULL")
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_human_tasks_next_escalation', ['next_escalation_at'], unique=False,
                              postgresql_where=sa.text('next_escalation_at IS NOT NULL'),
                              sqlite_where=sa.text('next_escalation_at IS NOT NULL'))
        batch_op.create_index('ix_human_tasks_escalated_to', ['escalated_to', 'escalated_at'], unique=False,
                              postgresql_where=sa.text('escalated_to IS NOT NULL'),
                              sqlite_where=sa.text('escalated_to IS NOT NULL'))


def downgrade() -> None:
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_human_tasks_escalated_to')
        batch_op.drop_index('ix_human_tasks_next_escalation')
        batch_op.drop_column('escalated_at')
        batch_op.drop_column('escalated_to')
        batch_op.drop_column('next_escalation_at')
        batch_op.drop_column('escalation_level')
