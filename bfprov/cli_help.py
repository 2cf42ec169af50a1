"""The command line's help texts that are not a command's own docstring: each command's
one-line summary for `bfprov --help` (short enough that Click never cuts it with "...")
and its examples, shown under its options in `bfprov COMMAND --help`."""

from __future__ import annotations

import re
from typing import TypedDict

from typer._click import Context, HelpFormatter  # Typer's own copy of Click
from typer.core import TyperCommand


class Command(TyperCommand):
    """A command whose arguments show their name only (ACCOUNT...), not a Python type
    after it (Typer's `ACCOUNT <list[str]>`), nor braces in the usage line."""

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        """Click's usage: a required argument bare (ACCOUNT), not in braces ({ACCOUNT})."""
        pieces = super().collect_usage_pieces(ctx)
        return [re.sub(r"^\{(.*)\}", r"\1", piece) for piece in pieces]

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        sections: dict[str, list[tuple[str, str]]] = {"Arguments": [], "Options": []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                name = param.metavar or (param.name or "").upper()
                record = (name + ("..." if param.nargs != 1 else ""), record[1])
            sections["Arguments" if param.param_type_name == "argument" else "Options"].append(
                record
            )
        for title, records in sections.items():
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)


class Doc(TypedDict):
    """Keyword arguments for `typer.Typer.command`: the summary, the examples and the
    command class."""

    short_help: str
    epilog: str


class CommandDoc(Doc):
    """`Doc` with the command class, for commands (not groups)."""

    cls: type[TyperCommand]


# (summary, examples): one example a line, with an optional "# comment".
_DOCS: dict[str, tuple[str, tuple[str, ...]]] = {
    "validate": (
        "Check the profiles; nothing else.",
        ("bfprov validate --profiles profiles/",),
    ),
    "plan": (
        "Show what apply would change, and why.",
        (
            "bfprov plan --profiles profiles/example.yaml",
            "bfprov plan --select team=core --out tonight.plan   # for `apply tonight.plan`",
        ),
    ),
    "apply": (
        "Create, rotate and publish what the plan shows.",
        (
            "bfprov apply --yes --no-verify --profiles profiles/example.yaml",
            "bfprov apply tonight.plan --lock-timeout 5m",
        ),
    ),
    "rollback": (
        "Bring back an account's previous pair as live.",
        ("bfprov rollback alice",),
    ),
    "promote": (
        "Make staged pairs live once their login works.",
        (
            "bfprov promote alice bob",
            "bfprov promote --select team=core --no-verify   # you vouch for the upload",
        ),
    ),
    "upload": (
        "Guide the certificate uploads on a local page.",
        ("bfprov upload", "bfprov upload --select team=core --no-browser"),
    ),
    "verify": (
        "Log each account in with its pairs and report.",
        ("bfprov verify", "bfprov verify --account alice --json"),
    ),
    "status": (
        "Per account: certificate, expiry, state, last login.",
        ("bfprov status", "bfprov status --prometheus > bfprov.prom"),
    ),
    "history": (
        "The audit trail of changes, publications and checks.",
        ("bfprov history alice --since 7d", "bfprov history --limit 20 --json"),
    ),
    "schema": (
        "Print the JSON Schema of a profile, for editors.",
        ("bfprov schema > profiles/bfprov.schema.json",),
    ),
    "init": (
        "Write a commented starter profile.",
        ("bfprov init --profiles profiles/",),
    ),
    "demo": (
        "Run the whole lifecycle against the emulator.",
        ("bfprov demo", "bfprov demo --keep   # keep its directory to look around"),
    ),
    "sandbox": (
        "The embedded Betfair login emulator.",
        ("bfprov sandbox serve --profiles profiles/example.yaml --port 0",),
    ),
    "sandbox serve": (
        "Run the emulator, accounts from the profiles.",
        (
            "bfprov sandbox serve --profiles profiles/example.yaml --port 0",
            "bfprov sandbox serve --upload-live --state-dir /tmp/sandbox",
        ),
    ),
    "sandbox upload": (
        "Upload a certificate to the emulator.",
        ("bfprov sandbox upload alice", "bfprov sandbox upload alice --staged"),
    ),
}


def doc(command: str) -> Doc:
    """The summary and the examples of `command` ("plan", "sandbox serve"). The examples
    are one block Click prints as written (the "\\b" line stops it rewrapping them)."""
    summary, examples = _DOCS[command]
    lines = "\n".join(f"  {example}" for example in examples)
    return Doc(short_help=summary, epilog=f"Examples:\n\n\b\n{lines}")


def command_doc(command: str) -> CommandDoc:
    """`doc(command)` with the command class that shows arguments by name."""
    return CommandDoc(**doc(command), cls=Command)
