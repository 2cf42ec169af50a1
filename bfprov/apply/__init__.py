"""Carrying out a plan: templates, the store (the only writer) and the executor."""
