"""The storage actor: owns the :class:`~storage.Database` and runs jobs in worker threads.

Messages: :class:`RunJob` (a request; the answer is the job's return value or its error).
Overflow policy: BLOCK — a caller waits for room; ``ask``'s timeout bounds that wait.
Concurrency: at most ``concurrency`` jobs run at once, each in ``trio.to_thread.run_sync``
under a ``CapacityLimiter``; the run loop takes no new job while all slots are busy, so the
mailbox fills and callers feel the backpressure.
Cancellation: a job already in its thread runs to its end (its transaction commits or rolls
back); stopping drains the mailbox and waits for running jobs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import trio
from sqlalchemy.orm import Session

from storage import Database, redact_url

from .actor import Actor, ActorRef, Reply, UnexpectedMessage

T = TypeVar("T")

#: Time a storage request may take, waiting for a slot included, before the caller gives up.
STORAGE_TIMEOUT = 30.0


@dataclass(frozen=True)
class RunJob:
    """Run ``job(session)`` in one transaction; answer with its result or its error."""

    job: Callable[[Session], Any]
    reply: Reply[Any]


class StorageActor(Actor):
    """The only owner of the database engine."""

    kind = "storage"
    mailbox_capacity = 256

    def __init__(self, database: Database, *, concurrency: int = 4, name: str = "storage") -> None:
        super().__init__(name)
        self.database = database
        self.concurrency = concurrency
        self._limiter = trio.CapacityLimiter(concurrency)
        self._slots = trio.Semaphore(concurrency)
        self._jobs: trio.Nursery | None = None

    @asynccontextmanager
    async def children(self) -> AsyncIterator[None]:
        async with trio.open_nursery() as jobs:
            self._jobs = jobs
            yield
        self._jobs = None

    async def handle(self, message: object) -> None:
        match message:
            case RunJob():
                await self._slots.acquire()
                assert self._jobs is not None
                self._jobs.start_soon(self._run, message)
            case _:
                raise UnexpectedMessage(f"{self.name} got {message!r}")

    async def execute(self, job: Callable[[Session], T]) -> T:
        """Run one job in a worker thread (the only blocking work the server does)."""
        return await trio.to_thread.run_sync(self.database.run, job, limiter=self._limiter)

    async def _run(self, message: RunJob) -> None:
        try:
            result = await self.execute(message.job)
        except Exception as error:
            message.reply.fail(error)
        else:
            message.reply.send(result)
        finally:
            self._slots.release()

    def snapshot(self) -> dict[str, Any]:
        return {
            **super().snapshot(),
            "database": redact_url(self.database.url),
            "jobsRunning": self.concurrency - self._slots.value,
            "concurrency": self.concurrency,
        }


async def run_job(
    storage: ActorRef,
    job: Callable[[Session], T],
    timeout: float = STORAGE_TIMEOUT,  # noqa: ASYNC109 - forwarded to ``ask``
) -> T:
    """Ask the storage actor to run ``job`` in a transaction and return its result."""
    result: T = await storage.ask(lambda reply: RunJob(job, reply), timeout=timeout)
    return result
