"""Replies that are not the store's API (a proxy's HTML, an empty 204, JSON of another
shape), and text from a server: one line naming the target, never a traceback, and the
server's text shown without control characters, cut.

The misbehaving server is real (tests/support/loopback_http.py): bfprov's clients talk HTTP to it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from bfprov.desired.targets import AwsSecretsManagerConfig, VaultConfig
from bfprov.publish.base import PublishError, Target
from bfprov.publish.kinds import make_target
from tests.support.loopback_http import Reply, odd_server
from tests.support.servers import REGION, Bao, MakeBundle, Moto

if TYPE_CHECKING:
    from pathlib import Path

hvac = pytest.importorskip("hvac")  # the [vault] extra
boto3 = pytest.importorskip("boto3")  # the [aws] extra

TOKEN_ENV = "BFPROV_TEST_VAULT_TOKEN"
JSON = "application/json"

# What a proxy, a portal or another API may answer in a store's place.
ODD_REPLIES = {
    "html": Reply(),
    "html-502": Reply(502),
    "html-404": Reply(404),
    "empty-204": Reply(204, None, b""),
    "json-without-data": Reply(200, JSON, b'{"request_id": "x", "warnings": null}'),
    "json-list": Reply(200, JSON, b"[1, 2]"),
    "json-data-not-a-map": Reply(200, JSON, b'{"data": "x"}'),
    "json-wrong-types": Reply(
        200, JSON, b'{"data": {"current_version": "abc", "versions": [1], "version": []}}'
    ),
    "error-list": Reply(400, JSON, b"[1, 2]"),
    "error-not-strings": Reply(400, JSON, b'{"errors": [1, {"a": 2}]}'),
}


def vault_target(address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Target:
    monkeypatch.setenv(TOKEN_ENV, "t" * 26)
    config = VaultConfig(address=address, token={"env": TOKEN_ENV}, path="t/{account}")
    return make_target(config, "alice", tmp_path, timeout=5)


def assert_one_line(error: PublishError, label: str) -> None:
    message = str(error)
    assert message.startswith(f"{label}: "), message
    assert "\n" not in message and "\r" not in message and "\x1b" not in message
    assert len(error.reason) <= 300


@pytest.mark.parametrize("name", ODD_REPLIES)
def test_vault_replies_that_are_not_the_api_are_one_line(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_bundle: MakeBundle
) -> None:
    with odd_server(ODD_REPLIES[name]) as odd:
        target = vault_target(odd.url, tmp_path, monkeypatch)
        bundle = make_bundle()
        for attempt in (target.observe, lambda: target.publish(bundle, last_version=None)):
            with pytest.raises(PublishError) as exc:
                attempt()
            assert_one_line(exc.value, target.label)
            assert "the reply is not the Vault API's: " in exc.value.reason


def test_vault_at_an_address_with_a_query_is_refused_before_any_request(openbao: Bao) -> None:
    """hvac would append the API path after the query, and the server answer its UI page:
    such an address never gets as far as a request (the profile is refused)."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as exc:
        VaultConfig(address=f"{openbao.address}/?x=1", token={"env": "T"}, path="p/{account}")
    assert "an address takes no query" in str(exc.value)


def aws_target(endpoint: str, tmp_path: Path) -> Target:
    config = AwsSecretsManagerConfig(region=REGION, name="t/{account}", endpoint_url=endpoint)
    return make_target(config, "alice", tmp_path, timeout=2)


@pytest.mark.parametrize("name", ODD_REPLIES)
def test_aws_replies_that_are_not_the_api_are_one_line(
    name: str, aws: Moto, tmp_path: Path, make_bundle: MakeBundle
) -> None:
    """botocore takes an HTML 200 for an empty success: bfprov must not claim a write."""
    with odd_server(ODD_REPLIES[name]) as odd:
        target = aws_target(odd.url, tmp_path)
        bundle = make_bundle()
        for attempt in (target.observe, lambda: target.publish(bundle, last_version=None)):
            with pytest.raises(PublishError) as exc:
                attempt()
            assert_one_line(exc.value, target.label)
            assert "is not the Secrets Manager API's" in exc.value.reason


# --- through the command line ----------------------------------------------------------

PROFILE = """\
version: 1
output_dir: certs
defaults:
  app_key: {{env: BF_APP_KEY}}
  key: {{size: 1024}}
  outputs: [key, crt]
  publish:
    - {target}
accounts:
  - {{name: alice, username: alice, password: {{env: BF_PASSWORD}}, subject: {{common_name: a}}}}
"""


def bfprov(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"BF_APP_KEY": "k", "BF_PASSWORD": "p", TOKEN_ENV: "t" * 26,
                        "NO_COLOR": "1", "COLUMNS": "200"}  # fmt: skip
    argv = [sys.executable, "-m", "bfprov", *args, "--profiles", str(tmp_path / "fleet.yaml")]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


def cli_targets(url: str) -> dict[str, tuple[str, str]]:
    vault = f"vault: {{address: '{url}', token: {{env: {TOKEN_ENV}}}, path: 't/{{account}}'}}"
    aws = f"aws_secrets_manager: {{region: {REGION}, name: 't/{{account}}', endpoint_url: '{url}'}}"
    return {
        "vault": (vault, f"vault {url} secret/t/alice"),
        "aws": (aws, f"aws_secrets_manager {url} t/alice"),
    }


@pytest.mark.parametrize("kind", ["vault", "aws"])
@pytest.mark.parametrize("name", ["html", "empty-204", "json-without-data"])
def test_cli_plan_and_apply_against_a_misbehaving_proxy(
    kind: str, name: str, aws: Moto, tmp_path: Path
) -> None:
    with odd_server(ODD_REPLIES[name]) as odd:
        target, label = cli_targets(odd.url)[kind]
        (tmp_path / "fleet.yaml").write_text(PROFILE.format(target=target))
        applied = bfprov(tmp_path, "apply", "--yes", "--no-verify")
        assert "Traceback" not in applied.stderr + applied.stdout, applied.stderr
        assert applied.returncode == 1, applied.stdout + applied.stderr
        lines = (applied.stdout + applied.stderr).splitlines()
        (failed,) = [ln for ln in lines if label in ln and ln.startswith("error:")]
        assert failed.startswith(f"error: alice: publication failed: {label}: the reply ")
        # The account is there, its target unobservable: plan says so, in one line.
        plan = bfprov(tmp_path, "plan")
        assert "Traceback" not in plan.stderr + plan.stdout, plan.stderr
        assert plan.returncode == 0, plan.stderr
        (line,) = [ln for ln in plan.stdout.splitlines() if f"{label} cannot be observed: " in ln]
        assert "not the" in line
        events = (tmp_path / "certs" / ".bfprov" / "events.jsonl").read_text().splitlines()
        assert "publish_failed" in {json.loads(e)["event"] for e in events}
        assert "published" not in {json.loads(e)["event"] for e in events}


# --- text from a server ----------------------------------------------------------------

# Terminal escapes (a colour, a window title, clear screen), a carriage return that would
# overwrite the line, a NUL, a bidirectional override, a newline, and a long tail.
HOSTILE = (
    "\x1b[31mred\x1b[0m \x1b]0;pwned\x07title fake:\x00line \u202eevil\x1b[2J"
    + "x" * 900
    + "\r\x00tail\r\nsecond line"
)
CONTROL = ("\x1b", "\r", "\x00", "\x07", "\u202e")


def hostile_replies() -> dict[str, tuple[str, Reply]]:
    vault_error = json.dumps({"errors": [HOSTILE]}).encode()
    aws_error = json.dumps({"__type": "ValidationException", "message": HOSTILE}).encode()
    amz = {"x-amzn-RequestId": "r-1", "x-amzn-ErrorType": "ValidationException"}
    return {
        "vault": ("vault", Reply(400, JSON, vault_error)),
        "vault-html": ("vault", Reply(200, "text/html", HOSTILE.encode())),
        "aws": ("aws", Reply(400, "application/x-amz-json-1.1", aws_error, amz)),
        "aws-html": ("aws", Reply(500, "text/html", HOSTILE.encode())),
    }


def assert_clean(text: str) -> None:
    for char in CONTROL:
        assert char not in text, repr(text)
    longest = max((len(run) for run in text.replace("…", " ").split() if set(run) == {"x"}),
                  default=0)  # fmt: skip
    assert longest <= 200  # the server's text is cut


@pytest.mark.parametrize("case", ["vault", "vault-html", "aws", "aws-html"])
def test_server_text_is_cleaned_in_output_events_records_and_history(
    case: str, aws: Moto, tmp_path: Path
) -> None:
    kind, reply = hostile_replies()[case]
    with odd_server(reply) as odd:
        target, label = cli_targets(odd.url)[kind]
        (tmp_path / "fleet.yaml").write_text(PROFILE.format(target=target))
        applied = bfprov(tmp_path, "apply", "--yes", "--no-verify")
        assert applied.returncode == 1, applied.stdout + applied.stderr
        assert "red" in applied.stderr and "fake: line" in applied.stderr
        plan = bfprov(tmp_path, "plan")
    assert "fake: line" in plan.stdout
    history = bfprov(tmp_path, "history")
    assert "fake:" in history.stdout
    dot = tmp_path / "certs" / ".bfprov"
    events = [json.loads(line) for line in (dot / "events.jsonl").read_text().splitlines()]
    (failed,) = [e for e in events if e["event"] == "publish_failed"]
    record = json.loads((tmp_path / "certs" / "alice" / ".bfprov" / "published.json").read_text())
    for text in (applied.stdout + applied.stderr, plan.stdout + plan.stderr, history.stdout,
                 failed["detail"], record[label]["error"]):  # fmt: skip
        assert_clean(text)
    assert len(failed["detail"]) <= 300


K8S = "{kubernetes: {dir: k8s, namespace: bots, name: 'b-{account}'}}"


def test_history_cleans_what_an_older_trail_holds(tmp_path: Path) -> None:
    """The trail is a file: what it holds is shown without escapes, whoever wrote it."""
    (tmp_path / "fleet.yaml").write_text(PROFILE.format(target=K8S))
    dot = tmp_path / "certs" / ".bfprov"
    dot.mkdir(parents=True)
    line = {"time": "2026-01-01T00:00:00+00:00", "account": "alice\x1b[2J",
            "event": "publish_failed", "target": "vault \x1b]0;t\x07x", "detail": HOSTILE,
            "user": "u\r", "host": "h", "version": "0"}  # fmt: skip
    (dot / "events.jsonl").write_text(json.dumps(line) + "\n")
    history = bfprov(tmp_path, "history")
    assert history.returncode == 0, history.stderr
    assert "fake:" in history.stdout
    assert_clean(history.stdout)


def test_clean_text() -> None:
    from bfprov.server_text import clean_text

    assert clean_text("\x1b[1;31mred\x1b[0m\r\nnext\tline\x00") == "red next line"
    assert clean_text("a\x1b]0;title\x07b \u202eevil \x9b2Jc") == "a b evil c"
    assert clean_text("x" * 500) == "x" * 199 + "…"
    assert len(clean_text("é" * 500, 10)) == 10
    assert clean_text("ok", None) == "ok"
