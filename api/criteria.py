"""SearchCriteria from a request body (Common-JSON shape, from JSON or XML) to
:class:`storage.search.Criteria`, with OMA errors for what is wrong."""

from __future__ import annotations

from typing import Any

from storage.search import Criteria, CriteriaError, parse_criteria

from .errors import OmaError, invalid_input


def criteria_from(value: Any, part: str) -> Criteria:
    if not isinstance(value, dict):
        raise invalid_input(part, "a SearchCriteria with criterion entries")
    listed = value.get("criterion")
    items = listed if isinstance(listed, list) else [] if listed is None else [listed]
    triples = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise invalid_input(f"{part}.criterion", "entries with a type and a value")
        name, raw = item.get("name"), item.get("value", "")
        triples.append((item["type"], None if name is None else str(name),
                        "" if raw is None else str(raw)))
    try:
        return parse_criteria(triples, value.get("operator"))
    except CriteriaError as error:
        raise _error(part, error) from None


def _error(part: str, error: CriteriaError) -> OmaError:
    return invalid_input(f"{part}.{error.part.split('.', 1)[-1]}", error.valid)

