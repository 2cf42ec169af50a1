"""bfprov: declarative provisioning of Betfair Exchange API bot-login certificates."""

from __future__ import annotations

__version__ = "0.1.0"
