"""SearchCriteria (NMS §5.3.2.16, §6.7): one evaluator for searches and subscription filters.

Criteria are evaluated on an item's state (:class:`~storage.nms.ItemState`). The stored date
of an object is its ``Date`` attribute (set to the time of storage when the client gives none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

from .nms import ItemState

SEARCH_TYPES = ("Date", "Attribute", "AllTextAttributes", "Flag", "WholeWord",
                "VanishedObjects", "CreatedObjects")
OPERATORS = ("And", "Or", "Not")


class CriteriaError(ValueError):
    """Criteria this server cannot evaluate; ``part`` names what is wrong."""

    def __init__(self, part: str, valid: str) -> None:
        super().__init__(f"{part}: {valid}")
        self.part = part
        self.valid = valid


@dataclass(frozen=True)
class Criterion:
    type: str
    name: str | None
    value: str


@dataclass(frozen=True)
class Criteria:
    criteria: tuple[Criterion, ...]
    operator: str = "And"

    @property
    def vanished(self) -> bool:
        return any(c.type == "VanishedObjects" for c in self.criteria)

    @property
    def created(self) -> Criterion | None:
        return next((c for c in self.criteria if c.type == "CreatedObjects"), None)


def parse_criteria(criteria: list[tuple[str, str | None, str]], operator: str | None) -> Criteria:
    if not criteria:
        raise CriteriaError("searchCriteria.criterion", "at least one criterion")
    op = operator or "And"
    if op not in OPERATORS:
        raise CriteriaError("searchCriteria.operator", ", ".join(OPERATORS))
    parsed = []
    for kind, name, value in criteria:
        if kind not in SEARCH_TYPES:
            raise CriteriaError("criterion.type", ", ".join(SEARCH_TYPES))
        if kind in ("Attribute", "Flag") and not name:
            raise CriteriaError("criterion.name", f"the {kind.lower()} name")
        if kind == "Date":
            _dates(value)
        if kind == "Flag" and value.strip().lower() not in ("", "true", "false", "1", "0"):
            raise CriteriaError("criterion.value", "true or false")
        parsed.append(Criterion(kind, name, value))
    result = Criteria(tuple(parsed), op)
    if result.vanished and (len(parsed) > 1 or op == "Not"):
        raise CriteriaError("criterion.type", "VanishedObjects alone, not negated or combined")
    return result


def matches(state: ItemState, criteria: Criteria, *, created_after: float = 0) -> bool:
    """Whether the item matches; ``created_after`` is the CreatedObjects cursor (a sequence)."""
    results = [_one(state, c, created_after) for c in criteria.criteria]
    if criteria.operator == "Or":
        return any(results)
    if criteria.operator == "Not":
        return not all(results)
    return all(results)


def _one(state: ItemState, criterion: Criterion, created_after: float) -> bool:
    kind, value = criterion.type, criterion.value
    if kind == "VanishedObjects":
        return state.kind == "object" and state.deleted
    if state.kind != "object" or state.deleted:
        return kind == "AllTextAttributes" and state.kind == "folder" and (
            value.lower() in (state.name or "").lower())
    attributes = dict(state.attributes)
    if kind == "Attribute":
        wanted = value.lower()
        return any(v.lower() == wanted for v in attributes.get(criterion.name or "", ()))
    if kind == "AllTextAttributes":
        return any(value.lower() in v.lower() for vs in attributes.values() for v in vs)
    if kind == "WholeWord":
        word = re.compile(rf"\b{re.escape(value)}\b", re.IGNORECASE)
        return any(word.search(v) for vs in attributes.values() for v in vs)
    if kind == "Flag":
        want_set = value.strip().lower() not in ("false", "0")
        return (criterion.name in state.flags) == want_set
    if kind == "CreatedObjects":
        return state.created_seq > created_after
    low, high = _dates(value)
    stored = _date(attributes.get("Date", ("",))[0])
    return stored is not None and (low is None or stored >= low) and (
        high is None or stored < high)


def _dates(value: str) -> tuple[datetime | None, datetime | None]:
    try:
        fields = dict(parse_qsl(value, strict_parsing=True))
    except ValueError:
        raise CriteriaError("criterion.value", "minDate=...&maxDate=... (xsd:dateTimeStamp)") \
            from None
    low, high = _date(fields.get("minDate", "")), _date(fields.get("maxDate", ""))
    if (fields.get("minDate") and low is None) or (fields.get("maxDate") and high is None) or (
            not fields.keys() & {"minDate", "maxDate"}):
        raise CriteriaError("criterion.value", "minDate=...&maxDate=... (xsd:dateTimeStamp)")
    return low, high


def _date(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def to_json(criteria: Criteria) -> dict[str, object]:
    """As stored with a subscription (and shown in its representation)."""
    return {"criterion": [{"type": c.type, "name": c.name, "value": c.value}
                          for c in criteria.criteria], "operator": criteria.operator}


def from_json(data: dict[str, object]) -> Criteria:
    listed = data.get("criterion")
    items = listed if isinstance(listed, list) else []
    return parse_criteria([(str(i["type"]), i.get("name"), str(i.get("value", "")))
                           for i in items], str(data.get("operator") or "And"))
