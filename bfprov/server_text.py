"""Text that came from elsewhere (a server's reply, a child's output) made safe to show.

A reply may hold terminal escapes (colours, cursor moves, a title change), carriage
returns that overwrite what was printed, NULs, bidirectional overrides that reorder a
line, or a whole HTML page. Everything such text reaches (the terminal, the audit
trail, `history`, the records) gets one line of plain text, cut.
"""

from __future__ import annotations

import re
import unicodedata

SERVER_TEXT_LIMIT = 200  # characters of a server's text shown or recorded (SPEC)

# Escape sequences as terminals read them: CSI (`ESC [ ... final`), OSC / DCS / APC
# strings (ended by BEL or `ESC \`), and any other two-character escape.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\|$)"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|\x1b[@-_ -/]?.?",
    re.DOTALL,
)
# C0/C1 controls (Cc), line and paragraph separators (Zl, Zp), and formatting
# characters (Cf: bidirectional overrides, zero-width joiners) all become a space.
_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def clean_text(text: str, limit: int | None = SERVER_TEXT_LIMIT) -> str:
    """`text` without control characters or escapes, on one line, at most `limit`
    characters (an ellipsis marks a cut); None: no cut."""
    text = _ESCAPES.sub(" ", text)
    text = "".join(" " if unicodedata.category(c) in _UNSAFE else c for c in text)
    text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)].rstrip() + "…"
    return text
