"""`--help` explains itself: readable metavars, examples, a command list never cut."""

from __future__ import annotations

import re

import pytest

from bfprov.cli import main

COMMANDS = [
    ["validate"],
    ["plan"],
    ["apply"],
    ["rollback"],
    ["promote"],
    ["upload"],
    ["verify"],
    ["status"],
    ["history"],
    ["schema"],
    ["init"],
    ["demo"],
    ["sandbox", "serve"],
    ["sandbox", "upload"],
]


def _help(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main([*args, "--help"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("columns", ["80", "120"])
def test_the_command_list_cuts_no_description(
    columns: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    for args in ([], ["sandbox"]):
        out = _help(args, capsys)
        commands = out.split("Commands:")[1]
        assert "..." not in commands, commands
        assert all(len(line) <= 80 for line in out.splitlines())


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_each_command_shows_readable_metavars_and_examples(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = _help(args, capsys)
    assert not re.search(r"<[a-z\[\]|, ]+>", out), out  # no <str>, <int>, <list[str]>
    assert "{" not in out.splitlines()[0]  # a required argument is bare in the usage
    examples = out.split("Examples:")[1].strip().splitlines()
    assert examples and all(
        line.strip().startswith("bfprov " + " ".join(args)) for line in examples
    )


def test_options_name_what_they_take(capsys: pytest.CaptureFixture[str]) -> None:
    out = _help(["apply"], capsys)
    for shown in (
        "--profiles PATH",
        "--account NAME",
        "--select KEY=VALUE",
        "--replace NAME",
        "--lock-timeout DURATION",
        "[FILE]",
    ):
        assert shown in out
    assert "--parallel N" in _help(["verify"], capsys)
    assert "--out FILE" in _help(["plan"], capsys)
    assert "--limit N" in _help(["history"], capsys)
    assert "--port N" in _help(["sandbox", "serve"], capsys)
