"""channels

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channels",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(512), nullable=False),
        sa.Column("callback_id", sa.String(64), nullable=False),
        sa.Column("channel_type", sa.String(32), nullable=False),
        sa.Column("client_correlator", sa.String(512)),
        sa.Column("application_tag", sa.String(512)),
        sa.Column("max_notifications", sa.Integer, nullable=False),
        sa.Column("channel_lifetime", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("callback_id", name="uq_channels_callback_id"),
        sa.UniqueConstraint("user_id", "client_correlator", name="uq_channels_user_correlator"),
    )
    op.create_index("ix_channels_user_id", "channels", ["user_id"])
    op.create_index("ix_channels_expires_at", "channels", ["expires_at"])


def downgrade() -> None:
    op.drop_table("channels")
