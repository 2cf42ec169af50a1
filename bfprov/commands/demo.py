"""`bfprov demo`: the whole lifecycle, in a temporary directory, against the emulator.

It runs the same commands a user would, each as its own `bfprov` process with the
environment a user would export, prints each as `$ bfprov ...`, and checks that each one
ends the way the runbook says it should (the scenario: bfprov.demo).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from bfprov.demo import run


def demo(*, keep: bool) -> int:
    """Run the lifecycle; exit 0 when every step ends as expected."""
    from bfprov.sandbox import Emulator  # the emulator (a TLS server) only when it runs

    with contextlib.ExitStack() as stack:
        if keep:
            root = Path(tempfile.mkdtemp(prefix="bfprov-demo-"))
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bfprov-demo-")))
        emulator = stack.enter_context(Emulator(root / "sandbox"))
        run(root, emulator, keep=keep)
    return 0
