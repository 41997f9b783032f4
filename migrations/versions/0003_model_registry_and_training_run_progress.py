"""model registry and training run progress

Model versions get a status (candidate | active | retired | rejected) in place
of the ``active`` flag, their lineage (parent, previous active, base model,
training-data hash) and the gate's comparison; training runs get a slot that
allows one queued-or-running run at a time, progress and a log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 18:06:01.872621
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('base_model', sa.String(length=200), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('data_hash', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('gate', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('status', sa.String(length=16), nullable=False, server_default='candidate'))
        batch_op.add_column(sa.Column('previous', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('training_run_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_model_versions_status'), ['status'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_model_versions_training_run_id_training_runs'), 'training_runs', ['training_run_id'], ['id'], ondelete='SET NULL')
    op.execute("UPDATE model_versions SET status = 'active' WHERE active")
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_column('active')
        for column in ('base_model', 'data_hash', 'gate', 'status'):
            batch_op.alter_column(column, server_default=None)

    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('slot', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('requested_by', sa.String(length=200), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('progress', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('log', sa.Text(), nullable=False, server_default=''))
        batch_op.create_unique_constraint(batch_op.f('uq_training_runs_slot'), ['slot'])
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        for column in ('requested_by', 'progress', 'log'):
            batch_op.alter_column(column, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_training_runs_slot'), type_='unique')
        batch_op.drop_column('log')
        batch_op.drop_column('progress')
        batch_op.drop_column('requested_by')
        batch_op.drop_column('slot')

    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE model_versions SET active = (status = 'active')")
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.alter_column('active', server_default=None)
        batch_op.drop_constraint(batch_op.f('fk_model_versions_training_run_id_training_runs'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_model_versions_status'))
        batch_op.drop_column('activated_at')
        batch_op.drop_column('training_run_id')
        batch_op.drop_column('previous')
        batch_op.drop_column('status')
        batch_op.drop_column('gate')
        batch_op.drop_column('data_hash')
        batch_op.drop_column('base_model')
        batch_op.drop_column('parent')
