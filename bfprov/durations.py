"""Durations as operators write them: `30s`, `5m`, `2h`, `7d`, or a plain number of seconds."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>[smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`text` as a timedelta; ValueError naming the text when it is not a duration."""
    m = _DURATION.match(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a duration like '30s', '5m', '2h' or '7d'")
    return timedelta(seconds=float(m["n"]) * _UNITS[m["unit"]])
