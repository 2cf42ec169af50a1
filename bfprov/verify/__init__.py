"""Login checks: the only network code that talks to Betfair's identity service."""
