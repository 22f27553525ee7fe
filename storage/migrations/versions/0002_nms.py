"""nms store: boxes, folders, objects, subscriptions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nms_boxes",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("store_name", sa.String(255), nullable=False),
        sa.Column("box_id", sa.String(512), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("validity", sa.Integer, nullable=False),
        sa.UniqueConstraint("store_name", "box_id", name="uq_nms_boxes_store_box"),
    )
    op.create_table(
        "nms_folders",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("box_pk", sa.Integer, sa.ForeignKey("nms_boxes.pk", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("parent_id", sa.String(32)),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("last_mod_seq", sa.BigInteger, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    op.create_index("ix_nms_folders_box_seq", "nms_folders", ["box_pk", "last_mod_seq"])
    op.create_table(
        "nms_objects",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("box_pk", sa.Integer, sa.ForeignKey("nms_boxes.pk", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("folder_id", sa.String(32), nullable=False),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("flags", sa.JSON, nullable=False),
        sa.Column("created_seq", sa.BigInteger, nullable=False),
        sa.Column("last_mod_seq", sa.BigInteger, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    op.create_index("ix_nms_objects_box_seq", "nms_objects", ["box_pk", "last_mod_seq"])
    op.create_table(
        "nms_subscriptions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("box_pk", sa.Integer, sa.ForeignKey("nms_boxes.pk", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("notify_url", sa.String(2048), nullable=False),
        sa.Column("callback_data", sa.String(1024)),
        sa.Column("notification_format", sa.String(8), nullable=False),
        sa.Column("duration", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filter", sa.JSON),
        sa.Column("client_correlator", sa.String(512)),
        sa.Column("next_index", sa.BigInteger, nullable=False),
        sa.Column("restart_token", sa.String(64), nullable=False),
        sa.UniqueConstraint("box_pk", "client_correlator", name="uq_nms_subscriptions_correlator"),
    )


def downgrade() -> None:
    op.drop_table("nms_subscriptions")
    op.drop_table("nms_objects")
    op.drop_table("nms_folders")
    op.drop_table("nms_boxes")
