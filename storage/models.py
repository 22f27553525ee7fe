"""SQLAlchemy 2.0 models. Every schema change comes with an Alembic migration."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Channel(Base):
    """An OMA Notification Channel. Queued notifications live in the channel actor, not here."""

    __tablename__ = "channels"
    __table_args__ = (
        UniqueConstraint("user_id", "client_correlator", name="uq_channels_user_correlator"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(512), index=True)
    callback_id: Mapped[str] = mapped_column(String(64), unique=True)
    channel_type: Mapped[str] = mapped_column(String(32))
    client_correlator: Mapped[str | None] = mapped_column(String(512))
    application_tag: Mapped[str | None] = mapped_column(String(512))
    max_notifications: Mapped[int] = mapped_column(Integer)
    channel_lifetime: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Box(Base):
    """An NMS box. ``seq`` is the last mod-sequence handed out in it; ``validity`` changes when
    the box is reset (restartTokens from before a reset name the old validity)."""

    __tablename__ = "nms_boxes"
    __table_args__ = (UniqueConstraint("store_name", "box_id", name="uq_nms_boxes_store_box"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    store_name: Mapped[str] = mapped_column(String(255))
    box_id: Mapped[str] = mapped_column(String(512))
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    validity: Mapped[int] = mapped_column(Integer, default=1)


class Folder(Base):
    """A folder; a deleted one stays as a tombstone so that replays can report it."""

    __tablename__ = "nms_folders"
    __table_args__ = (Index("ix_nms_folders_box_seq", "box_pk", "last_mod_seq"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    box_pk: Mapped[int] = mapped_column(ForeignKey("nms_boxes.pk", ondelete="CASCADE"))
    parent_id: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    last_mod_seq: Mapped[int] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class StoredObject(Base):
    """A stored object (a chat message); a deleted one stays as a tombstone."""

    __tablename__ = "nms_objects"
    __table_args__ = (Index("ix_nms_objects_box_seq", "box_pk", "last_mod_seq"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    box_pk: Mapped[int] = mapped_column(ForeignKey("nms_boxes.pk", ondelete="CASCADE"))
    folder_id: Mapped[str] = mapped_column(String(32))
    attributes: Mapped[list[Any]] = mapped_column(JSON)
    flags: Mapped[list[str]] = mapped_column(JSON)
    created_seq: Mapped[int] = mapped_column(BigInteger)
    last_mod_seq: Mapped[int] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class Subscription(Base):
    """An NMS subscription; ``restart_token`` and ``next_index`` are saved as it delivers."""

    __tablename__ = "nms_subscriptions"
    __table_args__ = (
        UniqueConstraint("box_pk", "client_correlator", name="uq_nms_subscriptions_correlator"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    box_pk: Mapped[int] = mapped_column(ForeignKey("nms_boxes.pk", ondelete="CASCADE"))
    notify_url: Mapped[str] = mapped_column(String(2048))
    callback_data: Mapped[str | None] = mapped_column(String(1024))
    notification_format: Mapped[str] = mapped_column(String(8))
    duration: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    filter: Mapped[Any | None] = mapped_column(JSON)
    client_correlator: Mapped[str | None] = mapped_column(String(512))
    next_index: Mapped[int] = mapped_column(BigInteger)
    restart_token: Mapped[str] = mapped_column(String(64))
