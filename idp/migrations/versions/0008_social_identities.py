"""social_identities: social network accounts linked to cabinet accounts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 16:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'social_identities',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('user_id', sa.String(length=36), nullable=False),
        sa.Column('provider', sa.String(length=16), nullable=False),
        sa.Column('subject', sa.String(length=255), nullable=False),
        sa.Column('display_email', sa.String(length=254), nullable=True),
        sa.Column('display_name', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('last_used_at', sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('provider', 'subject', name='uq_social_provider_subject'),
    )
    with op.batch_alter_table('social_identities', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_social_identities_user_id'), ['user_id'], unique=False
        )


def downgrade():
    with op.batch_alter_table('social_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_social_identities_user_id'))
    op.drop_table('social_identities')
