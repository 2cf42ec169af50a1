"""Pure presentation of plans, checks and status."""
