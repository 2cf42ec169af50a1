"""The JSON Schema (2020-12) of a profile, for editors and `bfprov schema`."""

from __future__ import annotations

from typing import Any

from bfprov.desired.document import ProfileDocument

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def profile_schema() -> dict[str, Any]:
    """The profile document's JSON Schema, with its dialect."""
    schema = ProfileDocument.model_json_schema()
    return {"$schema": SCHEMA_DIALECT, **schema}
