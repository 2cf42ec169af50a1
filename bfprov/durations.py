"""Durations as operators write them: `30s`, `5m`, `2h`, `7d`, or a plain number of seconds."""

from __future__ import annotations

import math
import re
from datetime import timedelta

_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>[smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Nothing bfprov waits for or plans ahead lasts longer; past it `timedelta` overflows
# (a traceback, not a message) long before any real use.
MAX_SECONDS = 36525 * 86400  # 100 years of 365.25 days


def parse_duration(text: str) -> timedelta:
    """`text` as a timedelta; ValueError naming the text when it is not a duration, or
    when it is longer than 100 years."""
    m = _DURATION.match(text.strip())
    if m is None:
        raise ValueError(f"{text[:40]!r} is not a duration like '30s', '5m', '2h' or '7d'")
    return bounded(float(m["n"]) * _UNITS[m["unit"]], text)


def bounded(seconds: float, text: str) -> timedelta:
    """`seconds` as a timedelta; ValueError quoting `text` past 100 years."""
    if not math.isfinite(seconds) or seconds > MAX_SECONDS:
        shown = text if len(text) <= 20 else text[:20] + "..."
        raise ValueError(f"{shown!r} is longer than 100 years")
    return timedelta(seconds=seconds)
