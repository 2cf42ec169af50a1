"""The `bfprov` command and `python -m bfprov`: a thin start in front of `bfprov.cli`.

Two things happen before the command line parser is even imported (a tenth of a second
on one core):

- for `bfprov apply`, the key pool starts making keys on the other core (see keypool);
- the cyclic garbage collector is switched off: bfprov is a short-lived process that
  makes little cyclic garbage, and collecting while hundreds of modules load costs more
  than it frees. Login checks switch it back on (network work makes cyclic garbage, a
  lot of it over a large fleet), and so does `sandbox serve`, which runs until stopped.

At the end, once the output is flushed, the process leaves with `os._exit`: every
file, lock and thread is already closed by then, and tearing down hundreds of modules
and every object (a few milliseconds, more for a large fleet) would change nothing.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import NoReturn


def main() -> NoReturn:
    from bfprov.apply import keypool

    args = sys.argv[1:]
    if keypool.wanted_by(args):
        keypool.start()
    gc.disable()
    from bfprov.cli import main as run

    _leave(run(args))


def _leave(code: int) -> NoReturn:
    """Flush what was printed, then exit at once (see the module's docstring)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`bfprov plan | head`), a closed file
            code = code or 1
    os._exit(code)


if __name__ == "__main__":
    main()
