"""`python -m bfprov`."""

from __future__ import annotations

import sys

from bfprov.cli import main

sys.exit(main())
