"""Wire formats. Bodies are read into plain dicts following OMA REST NetAPI Common's XML⇄JSON
rules (a repeated element is a list, simple values are strings) and written back out of them."""

from __future__ import annotations

import json
from typing import Any


def dump_json(value: Any) -> str:
    """Compact JSON, as every body and frame this server writes is encoded."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
