"""The upload session (`bfprov upload`): a local page that guides the one manual step of
every rotation, uploading each new certificate on Betfair's website, and checks and
promotes each pair the moment its upload is done.

`session` holds the entries and their states; `server` serves the page, its assets and
its small JSON API behind a token, a cookie, a CSRF token and a Host check.
"""
