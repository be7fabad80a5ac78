"""inbox filters and documents

Revision ID: 0007_inbox_documents
Revises: 0006_escalation
Create Date: 2026-11-30 04:58:09.470241
"""
from alembic import op
import sqlalchemy as sa
import certflow.store.base


revision = '0007_inbox_documents'
down_revision = '0006_escalation'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('saved_filters',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('owner', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('shared_group', sa.String(length=100), nullable=True),
    sa.Column('criteria', sa.JSON(), nullable=False),
    sa.Column('created_at', certflow.store.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_filters'))
    )
    with op.batch_alter_table('saved_filters', schema=None) as batch_op:
        batch_op.create_index('ix_saved_filters_owner_name', ['owner', 'name'], unique=True)
        batch_op.create_index(batch_op.f('ix_saved_filters_shared_group'), ['shared_group'], unique=False)

    op.create_table('documents',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('instance_id', sa.String(length=32), nullable=False),
    sa.Column('owner', sa.String(length=100), nullable=False),
    sa.Column('uploaded_by', sa.String(length=100), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', certflow.store.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], name=op.f('fk_documents_instance_id_instances'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_documents'))
    )
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_documents_instance_id'), ['instance_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_documents_owner'), ['owner'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_documents_owner'))
        batch_op.drop_index(batch_op.f('ix_documents_instance_id'))

    op.drop_table('documents')
    with op.batch_alter_table('saved_filters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_saved_filters_shared_group'))
        batch_op.drop_index('ix_saved_filters_owner_name')

    op.drop_table('saved_filters')
