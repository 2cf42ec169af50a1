"""`bfprov schema`: the JSON Schema of a profile, for editors."""

from __future__ import annotations

from typing import Any

from bfprov import console
from bfprov.desired.document import ProfileDocument
from bfprov.plan.snapshot import dump_json

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def profile_schema() -> dict[str, Any]:
    schema = ProfileDocument.model_json_schema()
    return {"$schema": SCHEMA_DIALECT, **schema}


def schema() -> int:
    console.raw(dump_json(profile_schema()))
    return 0
