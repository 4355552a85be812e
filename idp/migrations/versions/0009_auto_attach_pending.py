"""users.auto_attach_pending_since, users.auto_attached: automatic attachment retried until
it has run once, and the numbers it attached

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 16:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auto_attach_pending_since', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('auto_attached', sa.JSON(), nullable=True))
        batch_op.create_index(
            batch_op.f('ix_users_auto_attach_pending_since'), ['auto_attach_pending_since'],
            unique=False,
        )


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_auto_attach_pending_since'))
        batch_op.drop_column('auto_attached')
        batch_op.drop_column('auto_attach_pending_since')
