"""Persistence: SQLAlchemy models, Alembic migrations and the database handle.

This package knows nothing of actors or HTTP. The storage actor (``actors.storage``) owns a
:class:`Database` and runs its jobs in worker threads.
"""

from .database import DEFAULT_DATABASE_URL, Database, redact_url
from .models import Base, Box, Channel, Folder, StoredObject, Subscription

__all__ = ["DEFAULT_DATABASE_URL", "Base", "Box", "Channel", "Database", "Folder", "StoredObject",
           "Subscription", "redact_url"]
