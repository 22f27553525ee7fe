"""SQLAlchemy 2.0 models. Every schema change comes with an Alembic migration."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, UniqueConstraint
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
