"""definitions: the same content may be deployed again as a newer version (a process owner
going back to an earlier diagram, or the files deployed after a studio deploy); the unique
(process_id, content_hash) made that an IntegrityError (a 500)

Revision ID: 0014_redeploy_earlier_versions
Revises: 0013_outbox_jobs
"""
from alembic import op


revision = "0014_redeploy_earlier_versions"
down_revision = "0013_outbox_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("definitions") as batch:
        batch.drop_constraint("uq_definitions_process_id_content_hash", type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("definitions") as batch:
        batch.create_unique_constraint("uq_definitions_process_id_content_hash", ["process_id", "content_hash"])
