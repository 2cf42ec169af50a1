"""JSON as bfprov prints and saves it: indented, UTF-8, one trailing newline."""

from __future__ import annotations

import json


def dump_json(data: object) -> str:
    """`data` as indented JSON text."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
