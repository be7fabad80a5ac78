"""e-invoices per customer type; invoice mails carry their documents

users: customer_type (person | organisation), kvk_number, oin, vat_id: organisations receive a
Peppol BIS 3.0 e-invoice addressed to their KvK number or OIN.
invoices: customer_type and customer_identifiers, the snapshot of those at invoicing time.
email_messages: attached_invoices, so a retried send attaches the same documents.

Revision ID: 0005_einvoice_customers
Revises: 0004_message_buffer
Create Date: 2026-11-30 05:15:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005_einvoice_customers'
down_revision = '0004_message_buffer'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_type', sa.String(length=20), nullable=False,
                                      server_default='person'))
        batch_op.add_column(sa.Column('kvk_number', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('oin', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('vat_id', sa.String(length=20), nullable=True))
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_type', sa.String(length=20), nullable=False,
                                      server_default='person'))
        # Existing rows: a person's invoice has no identifiers.
        batch_op.add_column(sa.Column('customer_identifiers', sa.JSON(), nullable=False,
                                      server_default=sa.text("'{}'")))
    with op.batch_alter_table('email_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attached_invoices', sa.JSON(), nullable=False,
                                      server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table('email_messages', schema=None) as batch_op:
        batch_op.drop_column('attached_invoices')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_column('customer_identifiers')
        batch_op.drop_column('customer_type')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('vat_id')
        batch_op.drop_column('oin')
        batch_op.drop_column('kvk_number')
        batch_op.drop_column('customer_type')
