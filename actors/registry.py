"""Find running actors by name (``channel:<id>``, ``subscription:<id>``)."""

from __future__ import annotations

from typing import Any


class DuplicateName(Exception):
    """Another live actor already has this name."""


class Registry:
    """Names of live actors. A supervisor registers a child when it starts and removes it when
    the child is gone for good (not between restarts: its mailbox lives on)."""

    def __init__(self) -> None:
        self._by_name: dict[str, Any] = {}

    def register(self, name: str, target: Any) -> None:
        current = self._by_name.get(name)
        if current is not None and current is not target:
            raise DuplicateName(name)
        self._by_name[name] = target

    def unregister(self, name: str, target: Any) -> None:
        if self._by_name.get(name) is target:
            del self._by_name[name]

    def lookup(self, name: str) -> Any | None:
        """The live actor (or supervisor) called ``name``, or ``None``."""
        return self._by_name.get(name)

    def names(self, prefix: str = "") -> list[str]:
        return sorted(name for name in self._by_name if name.startswith(prefix))

    def __len__(self) -> int:
        return len(self._by_name)
