"""The `bfprov` command and `python -m bfprov`: a thin start in front of `bfprov.cli`.

Two things happen before the command line parser is even imported (a tenth of a second
on one core):

- for `bfprov apply`, the key pool starts making keys on the other core (see keypool);
- the cyclic garbage collector is switched off: bfprov is a short-lived process that
  makes little cyclic garbage, and collecting while hundreds of modules load costs more
  than it frees. Login checks switch it back on (network work makes cyclic garbage, a
  lot of it over a large fleet), and so does `sandbox serve`, which runs until stopped.
  At exit, what is left is frozen, so the interpreter does not walk every object on the
  way out.
"""

from __future__ import annotations

import gc
import sys


def main() -> int:
    from bfprov import keypool

    args = sys.argv[1:]
    if keypool.wanted_by(args):
        keypool.start()
    gc.disable()
    try:
        from bfprov.cli import main as run

        return run(args)
    finally:
        gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
