"""The one error type whose message is meant for the user."""

from __future__ import annotations


class BfprovError(Exception):
    """An error the user can act on: the CLI prints its message and exits 1.

    Messages never contain secrets or key material. Anything that is not a
    BfprovError is a bug and is shown with its traceback.
    """
