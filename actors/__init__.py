"""The actor runtime (mailboxes, supervision, registry, statistics) and Tidings' actors."""

from .actor import (
    Actor,
    ActorCrashed,
    ActorError,
    ActorRef,
    ActorState,
    ActorStopped,
    AskTimeout,
    MailboxFull,
    OverflowPolicy,
    Reply,
    UnexpectedMessage,
)
from .registry import DuplicateName, Registry
from .supervisor import ChildSpec, Restart, RestartIntensityExceeded, Supervisor

__all__ = [
    "Actor",
    "ActorCrashed",
    "ActorError",
    "ActorRef",
    "ActorState",
    "ActorStopped",
    "AskTimeout",
    "ChildSpec",
    "DuplicateName",
    "MailboxFull",
    "OverflowPolicy",
    "Registry",
    "Reply",
    "Restart",
    "RestartIntensityExceeded",
    "Supervisor",
    "UnexpectedMessage",
]
