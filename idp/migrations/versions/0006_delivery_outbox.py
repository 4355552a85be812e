"""delivery outbox and parked events

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 13:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('outbox_entries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('ref', sa.String(length=64), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('due_at_ms', sa.BigInteger(), nullable=False),
    sa.Column('claim', sa.String(length=32), nullable=True),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('sent_at', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id')
    )
    with op.batch_alter_table('outbox_entries', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_entries_due', ['state', 'due_at_ms'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_entries_ref'), ['ref'], unique=False)

    op.create_table('parked_events',
    sa.Column('consumer', sa.String(length=64), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('cursor', sa.BigInteger(), nullable=False),
    sa.Column('event', sa.JSON(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('first_failed_at', sa.BigInteger(), nullable=False),
    sa.Column('parked_at', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('consumer', 'event_id')
    )


def downgrade():
    op.drop_table('parked_events')
    with op.batch_alter_table('outbox_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_entries_ref'))
        batch_op.drop_index('ix_outbox_entries_due')
    op.drop_table('outbox_entries')
