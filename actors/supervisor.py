"""OTP-style ``one_for_one`` supervision.

A :class:`Supervisor` runs its children in one nursery it owns. When a child crashes, only that
child is restarted (its mailbox, and its siblings' mailboxes and state, are untouched), after a
backoff of ``backoff_base * 2**(n-1)`` seconds, capped at ``backoff_max``, where ``n`` counts the
restarts inside the current ``period``. More than ``intensity`` restarts within ``period``
seconds and the supervisor gives up: with ``escalate=True`` (the default, as in OTP) it fails
and its own parent decides; with ``escalate=False`` (for supervisors of many independent dynamic
children, such as channels) it gives up on that child only, and counts restarts per child.

Stopping is graceful: children stop in reverse start order, each under its own grace deadline,
after which it is cancelled.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from .actor import ActorState, ActorStats
from .registry import Registry


class Restart(enum.Enum):
    """When a child that ended is started again."""

    #: always (after a crash and after a normal exit)
    PERMANENT = "permanent"
    #: only after a crash
    TRANSIENT = "transient"
    #: never
    TEMPORARY = "temporary"


class RestartIntensityExceeded(Exception):
    """A supervisor saw more restarts than its intensity allows within its period."""


def _first_leaf(group: BaseExceptionGroup[Any]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


class Supervisable(Protocol):
    """What a supervisor can run: an :class:`~actors.actor.Actor` or another supervisor."""

    name: str
    state: ActorState
    stats: ActorStats

    @property
    def kind(self) -> str: ...

    async def run(self, *, task_status: trio.TaskStatus[Any] = ...) -> None: ...

    def close_mailbox(self) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...


class _StartedFlag:
    """Passes ``started()`` on and remembers that it happened."""

    def __init__(self, inner: trio.TaskStatus[Any]) -> None:
        self.inner = inner
        self.done = False

    def started(self, value: Any = None) -> None:
        self.done = True
        self.inner.started(value)


@dataclass
class ChildSpec:
    """How to run one child."""

    target: Supervisable
    restart: Restart = Restart.PERMANENT
    #: seconds a child is given to stop by itself before it is cancelled
    grace: float = 5.0


@dataclass(eq=False)
class _Child:
    spec: ChildSpec
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)
    stopping: bool = False
    restart_times: deque[float] = field(default_factory=deque)

    @property
    def target(self) -> Supervisable:
        return self.spec.target


class Supervisor:
    """Runs children, restarts them by policy, stops them in reverse order."""

    kind = "supervisor"

    def __init__(
        self,
        name: str,
        children: Iterable[ChildSpec] = (),
        *,
        intensity: int = 3,
        period: float = 5.0,
        backoff_base: float = 0.1,
        backoff_max: float = 2.0,
        escalate: bool = True,
        registry: Registry | None = None,
    ) -> None:
        self.name = name
        self.state = ActorState.NEW
        self.stats = ActorStats()
        self.intensity = intensity
        self.period = period
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.escalate = escalate
        self.registry = registry
        self._initial = list(children)
        self._children: dict[str, _Child] = {}
        self._restart_times: deque[float] = deque()
        self._stop_requested = trio.Event()
        self._nursery: trio.Nursery | None = None

    # -- life ------------------------------------------------------------------------------
    async def run(
        self, *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Start the initial children in order, then supervise until asked to stop."""
        self._stop_requested = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for spec in self._initial:
                    await self.start_child(spec)
                self.state = ActorState.RUNNING
                self.stats.started_at = trio.current_time()
                task_status.started(self)
                await self._stop_requested.wait()
                self.state = ActorState.STOPPING
                await self._stop_all()
        except BaseExceptionGroup as group:
            self.state = ActorState.FAILED
            gave_up, other = group.split(RestartIntensityExceeded)
            if gave_up is not None and other is None:
                # one clean error for the parent, not a nest of groups from our nursery
                raise _first_leaf(gave_up) from None
            raise
        except Exception:
            self.state = ActorState.FAILED
            raise
        finally:
            self._nursery = None
        self.state = ActorState.STOPPED

    def close_mailbox(self) -> None:
        """Ask for a graceful stop (same signal as an actor's mailbox closing)."""
        self._stop_requested.set()

    def add(self, spec: ChildSpec) -> None:
        """Add a child to start (in order) when the supervisor starts."""
        if self._nursery is not None:
            raise RuntimeError(f"{self.name} is running: use start_child")
        self._initial.append(spec)

    async def start_child(self, spec: ChildSpec) -> Any:
        """Start ``spec`` under this supervisor; returns what the child reported as started."""
        if self._nursery is None:
            raise RuntimeError(f"{self.name} is not running")
        name = spec.target.name
        if name in self._children:
            raise ValueError(f"{self.name} already has a child named {name!r}")
        child = _Child(spec)
        self._children[name] = child
        try:
            started = await self._nursery.start(self._supervise, child)
        except BaseException:
            self._children.pop(name, None)
            raise
        if self.registry is not None and not child.done.is_set():
            self.registry.register(name, spec.target)
        return started

    async def stop_child(self, name: str) -> None:
        """Stop one child gracefully (under its grace deadline) and forget it."""
        child = self._children.get(name)
        if child is not None:
            await self._stop_one(child)

    def targets(self) -> list[Supervisable]:
        """The children, in the order they were started."""
        return [child.target for child in self._children.values()]

    def child(self, name: str) -> Supervisable | None:
        child = self._children.get(name)
        return None if child is None else child.target

    async def _stop_all(self) -> None:
        for child in reversed(list(self._children.values())):
            await self._stop_one(child)

    async def _stop_one(self, child: _Child) -> None:
        child.stopping = True
        child.target.state = ActorState.STOPPING
        child.scope.deadline = min(child.scope.deadline, trio.current_time() + child.spec.grace)
        child.target.close_mailbox()
        await child.done.wait()

    # -- supervision -----------------------------------------------------------------------
    async def _supervise(self, child: _Child, *, task_status: trio.TaskStatus[Any]) -> None:
        target = child.target
        status = _StartedFlag(task_status)
        first = True
        try:
            with child.scope:
                while True:
                    error: Exception | None = None
                    try:
                        if first:
                            await target.run(task_status=status)
                        else:
                            await target.run()
                    except Exception as exc:
                        if not status.done:
                            raise  # failed before it started: the starter gets the error
                        error = exc
                        target.stats.last_error = (type(exc).__name__, str(exc))
                    first = False
                    if child.stopping or not self._wants_restart(child, error):
                        target.state = ActorState.STOPPED if error is None else ActorState.FAILED
                        return
                    delay = self._admit_restart(child, error)
                    if delay is None:
                        target.state = ActorState.FAILED
                        return
                    target.state = ActorState.RESTARTING
                    await trio.sleep(delay)
                    target.stats.restarts += 1
            target.state = ActorState.STOPPED
        finally:
            if self.registry is not None:
                self.registry.unregister(target.name, target)
            if self._children.get(target.name) is child:
                del self._children[target.name]
            child.done.set()

    @staticmethod
    def _wants_restart(child: _Child, error: Exception | None) -> bool:
        match child.spec.restart:
            case Restart.PERMANENT:
                return True
            case Restart.TRANSIENT:
                return error is not None
            case Restart.TEMPORARY:
                return False

    def _admit_restart(self, child: _Child, error: Exception | None) -> float | None:
        """Backoff before the next restart, or ``None``/raise when the intensity is exceeded."""
        now = trio.current_time()
        times = self._restart_times if self.escalate else child.restart_times
        while times and times[0] <= now - self.period:
            times.popleft()
        if len(times) >= self.intensity:
            if not self.escalate:
                return None
            raise RestartIntensityExceeded(
                f"{self.name}: more than {self.intensity} restarts in {self.period} s "
                f"(last: {child.target.name})"
            ) from error
        times.append(now)
        return float(min(self.backoff_max, self.backoff_base * 2 ** (len(times) - 1)))

    # -- statistics ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        started = self.stats.started_at
        error = self.stats.last_error
        return {
            "name": self.name,
            "kind": self.kind,
            "state": self.state.value,
            "strategy": "one_for_one",
            "intensity": self.intensity,
            "period": self.period,
            "mailbox": None,
            "received": self.stats.received,
            "handled": self.stats.handled,
            "failed": self.stats.failed,
            "restarts": self.stats.restarts,
            "lastError": None if error is None else {"type": error[0], "message": error[1]},
            "uptime": 0.0 if started is None else round(trio.current_time() - started, 3),
            "children": self.child_snapshots(),
        }

    def child_snapshots(self) -> list[dict[str, Any]]:
        return [
            {**child.target.snapshot(), "restartPolicy": child.spec.restart.value}
            for child in list(self._children.values())
        ]

    def __len__(self) -> int:
        return len(self._children)
