"""review tasks and training examples

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 17:49:49.816256
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('review_tasks',
    sa.Column('document_id', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('claimed_by_id', sa.Integer(), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reject_reason', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['claimed_by_id'], ['users.id'], name=op.f('fk_review_tasks_claimed_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_review_tasks_decided_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_review_tasks_document_id_documents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('document_id', name=op.f('pk_review_tasks'))
    )
    with op.batch_alter_table('review_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_tasks_state'), ['state'], unique=False)

    op.create_table('training_examples',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.String(length=32), nullable=True),
    sa.Column('attempt_id', sa.Integer(), nullable=True),
    sa.Column('doc_type', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('values', sa.JSON(), nullable=False),
    sa.Column('origins', sa.JSON(), nullable=False),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('approver', sa.String(length=254), nullable=False),
    sa.Column('golden', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['approved_by_id'], ['users.id'], name=op.f('fk_training_examples_approved_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['attempt_id'], ['extraction_attempts.id'], name=op.f('fk_training_examples_attempt_id_extraction_attempts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_training_examples_document_id_documents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_examples'))
    )
    with op.batch_alter_table('training_examples', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_examples_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_training_examples_doc_type'), ['doc_type'], unique=False)
        batch_op.create_index(batch_op.f('ix_training_examples_document_id'), ['document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_training_examples_golden'), ['golden'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('training_examples', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_examples_golden'))
        batch_op.drop_index(batch_op.f('ix_training_examples_document_id'))
        batch_op.drop_index(batch_op.f('ix_training_examples_doc_type'))
        batch_op.drop_index(batch_op.f('ix_training_examples_created_at'))

    op.drop_table('training_examples')
    with op.batch_alter_table('review_tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_tasks_state'))

    op.drop_table('review_tasks')
