"""`bfprov schema`: the JSON Schema of a profile, for editors."""

from __future__ import annotations

from bfprov import console
from bfprov.views.json_text import dump_json
from bfprov.views.schema import profile_schema


def schema() -> int:
    console.raw(dump_json(profile_schema()))
    return 0
