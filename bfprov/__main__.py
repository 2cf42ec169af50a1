"""The `bfprov` command and `python -m bfprov`: a thin start in front of `bfprov.cli`."""

from __future__ import annotations

import sys


def main() -> None:
    from bfprov.cli import main as run

    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
