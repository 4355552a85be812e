"""users.attach_skipped_at: «Завершить регистрацию без привязки лицевого счета»

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 14:15:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attach_skipped_at', sa.BigInteger(), nullable=True))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('attach_skipped_at')
