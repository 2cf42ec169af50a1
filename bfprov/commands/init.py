"""`bfprov init`: a commented starter profile and a .gitignore for key material."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bfprov import console
from bfprov.apply.files import write_file
from bfprov.layout import PUBLIC_MODE

if TYPE_CHECKING:
    from bfprov.settings import Settings

STARTER = """\
# yaml-language-server: $schema=./bfprov.schema.json
# bfprov profile: the client certificates of your Betfair bot accounts.
# `bfprov plan` shows what would change on disk, `bfprov apply` makes it so.
version: 1
output_dir: ../certs            # relative to this file; BFPROV_OUTPUT_DIR overrides it

defaults:                       # every account below takes these, field by field
  jurisdiction: com             # com (also AU/NZ), it, es, ro or se
  app_key: {env: BF_APP_KEY}    # secrets are references only: {env: NAME} or {file: PATH}
  key: {size: 2048}             # RSA 2048 (1024 is accepted by Betfair, with a warning)
  subject:
    country: GB
    organization: Example Trading Ltd
  validity:
    days: 365
    renew_before: 30d           # or a share of the lifetime, e.g. 25%
  outputs: [key, crt, pem, cnf] # add p12 (with p12.password) for .NET/Java, csr if wanted
  # p12: {profile: modern, password: {env: BF_P12_PASSWORD}}   # legacy for Java 8/old .NET

accounts:
  - name: mybot                 # the directory name: [a-z0-9][a-z0-9._-]{0,63}
    username: my-betfair-username
    password: {env: BF_PASSWORD_MYBOT}
    subject: {common_name: mybot}
"""

# Inside the output directory: git then ignores the directory and everything in it.
GITIGNORE = """\
# Written by bfprov init: keys and certificates never go into git.
*
"""


def init(settings: Settings) -> int:
    target = settings.profiles
    path = target / "bfprov.yaml" if target.suffix not in (".yaml", ".yml") else target
    write_file(path, STARTER.encode(), PUBLIC_MODE, overwrite=False)
    console.say(f"Wrote the starter profile {path}")
    from bfprov.views.json_text import dump_json
    from bfprov.views.schema import profile_schema

    schema = path.parent / "bfprov.schema.json"
    write_file(schema, dump_json(profile_schema()).encode(), PUBLIC_MODE, overwrite=True)
    console.say(f"Wrote {schema}: editors with a YAML language server complete and check profiles")
    output_dir = settings.output_dir or (path.parent / "../certs")
    gitignore = Path(output_dir) / ".gitignore"
    if not gitignore.exists():
        write_file(gitignore, GITIGNORE.encode(), PUBLIC_MODE, overwrite=False)
        console.say(f"Wrote {gitignore}: it keeps the key material out of git")
    console.say(
        "\nNext steps:\n"
        f"  1. edit {path}: accounts, subject, jurisdiction\n"
        "  2. export the secrets it references (BF_APP_KEY, BF_PASSWORD_MYBOT, ...)\n"
        "  3. bfprov validate && bfprov plan\n"
        "  4. bfprov apply, then upload each .crt at the URL it prints"
    )
    return 0
