"""Publishing: delivering an account's live pair to where its bots run.

One module per target kind (`vault`, `aws`, `kubernetes`) behind the `Target` interface
of `base`; `make_target` builds one from its configuration. `hooks` runs the profile's
commands after a pair goes live or an account fails.
"""
