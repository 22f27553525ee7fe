"""A storage actor for virtual-time tests: jobs run on the trio thread, so the clock does not
jump while the database works."""

from __future__ import annotations

from actors.storage import StorageActor


class InlineStorage(StorageActor):
    async def execute(self, job):
        return self.database.run(job)
