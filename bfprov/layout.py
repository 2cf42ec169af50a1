"""The output directory's layout: every file name, directory name and mode, defined once.

Observer, planner and store all speak of the same files; they take the names from here.
"""

from __future__ import annotations

import re

STAGED = "staged"  # the next pair, awaiting its upload
ARCHIVE = "archive"  # earlier generations, one sub-directory per UTC time
CNF_NAME = "openssl.cnf"
PAIR_STEM = re.compile(r"^client-(1024|2048)$")
# What betfairlightweight picks up from an account directory: strays beside the pair.
WATCHED_SUFFIXES = (".crt", ".cert", ".key", ".pem")
TEMP_FILE = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")
LOCK_NAME = ".bfprov.lock"
LOCK_HOLDER = ".bfprov.lock.holder"  # who holds the lock (command, user, host, pid)
ORPHANS = ".orphans"

RECORD_DIR = ".bfprov"  # bfprov's own records: betfairlightweight never looks there
RECORD_FILE = "record.json"
RECORD_PATH = f"{RECORD_DIR}/{RECORD_FILE}"
PUBLISHED_FILE = "published.json"  # an account's deliveries to publishing targets
EVENTS_FILE = "events.jsonl"  # the audit trail, in <output_dir>/.bfprov/

DIR_MODE = 0o700
SECRET_MODE = 0o600  # keys and anything holding one
PUBLIC_MODE = 0o644
# The mode of each output, by its name in profiles.
MODES: dict[str, int] = {
    "key": SECRET_MODE,
    "pem": SECRET_MODE,
    "p12": SECRET_MODE,
    "crt": PUBLIC_MODE,
    "csr": PUBLIC_MODE,
    "cnf": PUBLIC_MODE,
}
