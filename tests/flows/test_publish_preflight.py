"""Everything about a publishing target is checked before anything is written.

Each case runs the real command line (`validate`, `plan`, `apply --yes --no-verify`) on a
profile of two accounts and must answer exit 1 with a message naming the problem, never
a traceback, never a secret, and (for apply) write nothing: no output directory, no
manifest, the profile untouched. No server is needed: the point is that none is reached.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from tests.support.fleet import CliFleet

if TYPE_CHECKING:
    from pathlib import Path

COMMANDS = {
    "validate": ["validate"],
    "plan": ["plan"],
    "apply": ["apply", "--yes", "--no-verify"],
}
VAULT = "vault: {{address: 'https://vault.example.com:8200', token: {{env: VAULT_TOKEN}}, {rest}}}"
AWS = "aws_secrets_manager: {{region: eu-west-1, {rest}}}"
K8S = "kubernetes: {{namespace: bots, {rest}}}"
AGE_SECRET = (
    "AGE-SECRET-KEY-" + "1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ7QPZ4Y"
)
RECIPIENT = "age1kpmag9uwmu9mrsm0v07lyjejwy0lknpq0egkyvsnx6gvf737mscqcgnld4"


def publish(*items: str, indent: int = 2) -> str:
    """A `publish:` list at `indent` (2 in defaults, 4 in an account)."""
    pad = " " * indent
    return f"{pad}publish:\n" + "".join(f"{pad}  - {item}\n" for item in items)


def profile(
    defaults: str = "", alice: str = "", bob: str = "", *, alice_name: str = "alice"
) -> str:
    """Two accounts; `defaults`, `alice` and `bob` are lines added to each section."""
    return (
        "version: 1\n"
        "output_dir: certs\n"
        "defaults:\n"
        "  app_key: {env: BF_APP_KEY}\n"
        "  key: {size: 1024}\n"
        "  subject: {organization: Example Ltd}\n"
        f"{defaults}"
        "accounts:\n"
        f"  - name: {alice_name}\n"
        "    username: alice\n"
        "    password: {env: BF_PASSWORD}\n"
        "    subject: {common_name: alice bot}\n"
        f"{alice}"
        "  - name: bob\n"
        "    username: bob\n"
        "    password: {env: BF_PASSWORD}\n"
        "    subject: {common_name: bob bot}\n"
        f"{bob}"
    )


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("BFPROV_OUTPUT_DIR", "BFPROV_PROFILES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BF_APP_KEY", "app-key-ENV-value")
    monkeypatch.setenv("BF_PASSWORD", "password-ENV-value")
    monkeypatch.setenv("VAULT_TOKEN", "vault-token-ENV-value")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def refused(
    root: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    command: str,
    *expect: str,
    secret: str | None = None,
) -> str:
    """Run `command` on the profile `text`: exit 1, each of `expect` in stderr, nothing
    written; returns stderr."""
    fleet = CliFleet(root, capsys, text)
    code, out, err = fleet.run(*COMMANDS[command])
    assert code == 1, (out, err)
    assert "Traceback" not in out + err
    for part in expect:
        assert part in err, err
    for value in ("app-key-ENV-value", "password-ENV-value", "vault-token-ENV-value"):
        assert value not in out + err
    if secret is not None:
        assert secret not in out + err
    assert not fleet.out.exists(), "apply wrote before its checks"
    assert fleet.profile.read_text() == text, "the profile was changed"
    return err


# --- 1. a target belongs to one account ----------------------------------------------

SHARED = {
    "vault": VAULT.format(rest="path: betfair/shared"),
    "aws": AWS.format(rest="name: betfair/shared"),
    "kubernetes": K8S.format(rest="dir: k8s, name: shared"),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("kind", SHARED)
def test_two_accounts_sharing_a_target_are_refused(
    env: Path, capsys: pytest.CaptureFixture[str], kind: str, command: str
) -> None:
    err = refused(env, capsys, profile(publish(SHARED[kind])), command, "alice", "bob")
    assert "belongs to one account" in err
    assert not (env / "k8s").exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_a_target_shared_once_account_is_filled_in_is_refused(
    env: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    text = profile(
        publish(VAULT.format(rest="path: 'betfair/{account}'")),
        alice=publish(VAULT.format(rest="path: betfair/bob"), indent=4),
    )
    refused(env, capsys, text, command, "alice", "bob", "secret/betfair/bob")


def test_the_same_manifest_under_two_spellings_is_one_target(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = profile(
        alice=publish(K8S.format(rest="dir: k8s, name: shared"), indent=4),
        bob=publish(K8S.format(rest="dir: k8s/./, name: shared"), indent=4),
    )
    refused(env, capsys, text, "validate", "alice", "bob", "k8s/shared.yaml")


def test_a_target_listed_twice_for_one_account_is_refused(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    item = AWS.format(rest="name: 'betfair/{account}'")
    text = profile(publish(item, item))
    err = refused(env, capsys, text, "validate", "betfair/alice", "listed twice")
    assert "publish[1]" in err


# --- 2. Vault paths and addresses ------------------------------------------------------


@pytest.mark.parametrize(
    "rest",
    [
        "path: 'betfair/../{account}'",
        "path: './{account}'",
        "path: 'betfair/./{account}'",
        "path: 'betfair//{account}'",
        "path: '/betfair/{account}'",
        "path: '..'",
        "path: 'x/{account}', mount: ../sys",
        "path: 'x/{account}', mount: secret/..",
        "path: 'x/{account}', mount: .",
        "path: 'x/{account}', mount: /secret",
    ],
)
def test_vault_paths_without_dot_or_empty_segments(
    env: Path, capsys: pytest.CaptureFixture[str], rest: str
) -> None:
    refused(env, capsys, profile(publish(VAULT.format(rest=rest))), "validate", "segment")


@pytest.mark.parametrize(
    ("address", "expect"),
    [
        ("https://operator:S3cretPw@vault.example.com:8200", "user or password"),
        ("https://:S3cretPw@vault.example.com:8200", "user or password"),
        ("https://operator@vault.example.com:8200", "user or password"),
        ("http://operator:S3cretPw@vault.example.com:8200", "user or password"),
        ("http://vault.example.com:8200", "use https"),
        ("ftp://operator:S3cretPw@vault.example.com", "not an http(s) URL"),
        ("https://vault.example.com:8200?S3cretPw=1", "query"),
        ("https://vault.example.com:8200#S3cretPw", "fragment"),
    ],
)
def test_an_address_with_credentials_query_or_fragment_is_refused(
    env: Path, capsys: pytest.CaptureFixture[str], address: str, expect: str
) -> None:
    item = f"vault: {{address: '{address}', token: {{env: VAULT_TOKEN}}, path: 'b/{{account}}'}}"
    for command in COMMANDS:
        refused(env, capsys, profile(publish(item)), command, expect, secret="S3cretPw")
    aws = f"aws_secrets_manager: {{region: eu-west-1, name: b, endpoint_url: '{address}'}}"
    refused(
        env, capsys, profile(alice=publish(aws, indent=4)), "validate", expect, secret="S3cretPw"
    )


# --- 3. a manifest never replaces a profile, nor a file bfprov did not write -------------


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", ["fleet", "other-{account}"])
def test_a_manifest_in_the_profiles_directory_is_refused(
    env: Path, capsys: pytest.CaptureFixture[str], command: str, name: str
) -> None:
    text = profile(alice=publish(K8S.format(rest=f"dir: ., name: '{name}'"), indent=4))
    refused(env, capsys, text, command, "profiles directory", str(env))
    assert sorted(p.name for p in env.iterdir()) == ["fleet.yaml"]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_file_bfprov_did_not_write_is_not_replaced(
    env: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    theirs = env / "k8s" / "shared-alice.yaml"
    theirs.parent.mkdir()
    content = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine}\ndata: {a: b}\n"
    theirs.write_text(content)
    text = profile(publish(K8S.format(rest="dir: k8s, name: 'shared-{account}'")))
    refused(env, capsys, text, command, str(theirs), "bfprov did not write")
    assert theirs.read_text() == content


# --- 4. what a target needs -------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_vault_token_is_an_error_not_drift(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.delenv("VAULT_TOKEN")
    text = profile(publish(VAULT.format(rest="path: 'betfair/{account}'")))
    refused(env, capsys, text, command, "VAULT_TOKEN", "is not set")


@pytest.mark.parametrize(
    ("rest", "expect"),
    [
        ("path: 'b/{account}', token: {file: no-such-token}", "no-such-token"),
        ("path: 'b/{account}', ca_bundle: no-such-ca.pem", "no-such-ca.pem"),
    ],
)
def test_a_vault_token_file_or_ca_bundle_that_cannot_be_read(
    env: Path, capsys: pytest.CaptureFixture[str], rest: str, expect: str
) -> None:
    item = VAULT.format(rest=rest).replace("token: {env: VAULT_TOKEN}, ", "", rest.count("token"))
    for command in COMMANDS:
        refused(env, capsys, profile(publish(item)), command, expect)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_kubernetes_name_invalid_once_the_account_is_filled_in(
    env: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    text = profile(
        publish(K8S.format(rest="dir: k8s, name: 'betfair-{account}'")), alice_name="alice_1"
    )
    refused(env, capsys, text, command, "'betfair-alice_1'", "Kubernetes name")


def test_an_aws_name_too_long_once_the_account_is_filled_in(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = profile(publish(AWS.format(rest=f"name: '{'x' * 508}{{account}}'")))
    refused(env, capsys, text, "validate", "Secrets Manager name")


def test_an_age_recipient_whose_checksum_is_wrong(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = RECIPIENT[:-1] + "5"
    rest = f"dir: k8s, name: 'b-{{account}}', sops_age_recipients: [{broken}]"
    refused(env, capsys, profile(publish(K8S.format(rest=rest))), "validate", "checksum")


@pytest.mark.parametrize(
    ("module", "item", "extra"),
    [
        ("hvac", VAULT.format(rest="path: 'b/{account}'"), "vault"),
        ("boto3", AWS.format(rest="name: 'b/{account}'"), "aws"),
    ],
)
def test_a_missing_extra_is_named(
    env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    item: str,
    extra: str,
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what an absent package looks like
    for command in COMMANDS:
        refused(env, capsys, profile(publish(item)), command, f"pip install 'bfprov[{extra}]'")


# --- 5. a value that looks like a secret is never quoted --------------------------------


def test_an_age_secret_key_as_a_recipient_is_refused_unquoted(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rest = f"dir: k8s, name: 'b-{{account}}', sops_age_recipients: [{AGE_SECRET}]"
    for command in COMMANDS:
        refused(
            env,
            capsys,
            profile(publish(K8S.format(rest=rest))),
            command,
            "age secret key",
            secret=AGE_SECRET[15:],
        )


PEM = (
    "-----BEGIN "
    + "PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\\n"
)


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f'    subject: {{common_name: "{PEM}"}}\n', "MIIEvQ"),
        (f"    jurisdiction: {AGE_SECRET}\n", AGE_SECRET[15:]),
        (f"    labels: {{team: {AGE_SECRET}}}\n", AGE_SECRET[15:]),
    ],
)
def test_a_secret_pasted_in_the_wrong_field_is_not_quoted(
    env: Path, capsys: pytest.CaptureFixture[str], line: str, secret: str
) -> None:
    text = profile(bob=line).replace(
        "    subject: {common_name: bob bot}\n", "", line.count("subject")
    )
    refused(env, capsys, text, "validate", "accounts[1]", "not shown", secret=secret)


# --- 6. durations past 100 years ---------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "  hooks: {on_live: [echo], timeout: 99999999999d}\n",
        "  hooks: {on_live: [echo], timeout: " + "9" * 400 + "s}\n",
        "  validity: {renew_before: 99999999999d}\n",
        "  validity: {renew_before: 36600d}\n",
        "  validity: {renew_jitter: 99999999999h}\n",
    ],
    ids=["hooks.timeout", "hooks.timeout-infinite", "renew_before", "renew_before-101y", "jitter"],
)
def test_a_duration_past_a_hundred_years_in_a_profile(
    env: Path, capsys: pytest.CaptureFixture[str], line: str
) -> None:
    err = refused(env, capsys, profile(line), "validate", "100 years")
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("value", ["99999999999d", "9" * 400], ids=["days", "infinite"])
@pytest.mark.parametrize("command", ["apply", "promote", "rollback"])
def test_a_lock_timeout_past_a_hundred_years(
    env: Path, capsys: pytest.CaptureFixture[str], command: str, value: str
) -> None:
    fleet = CliFleet(env, capsys, profile())
    args = {"apply": ["apply", "--yes"], "promote": ["promote", "alice"]}
    code, out, err = fleet.run(*args.get(command, ["rollback", "alice"]), "--lock-timeout", value)
    assert code == 1, (out, err)
    assert "Traceback" not in out + err
    assert "--lock-timeout" in err and "100 years" in err
    assert len(err.strip().splitlines()) == 1, err
    assert not fleet.out.exists()


# --- promote and rollback publish too: the same checks first -----------------------------


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_promote_and_rollback_check_the_targets_before_any_change(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = CliFleet(env, capsys, profile())
    assert fleet.run("apply", "--yes", "--no-verify")[0] == 0
    assert fleet.run("apply", "--yes", "--no-verify", "--replace", "alice")[0] == 0
    assert fleet.run("promote", "alice", "--no-verify")[0] == 0  # alice has an archive now
    assert fleet.run("apply", "--yes", "--no-verify", "--replace", "alice")[0] == 0  # staged
    monkeypatch.delenv("VAULT_TOKEN")
    fleet.profile.write_text(profile(publish(VAULT.format(rest="path: 'betfair/{account}'"))))
    before = tree(fleet.out)
    for command in (["promote", "alice", "--no-verify"], ["rollback", "alice"]):
        code, out, err = fleet.run(*command)
        assert code == 1, (command, out, err)
        assert "VAULT_TOKEN" in err and "is not set" in err
        assert "Traceback" not in out + err
        assert tree(fleet.out) == before, command


def test_a_problem_of_defaults_is_one_line_for_the_whole_fleet(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VAULT_TOKEN")
    text = profile(publish(VAULT.format(rest="path: 'betfair/{account}'")))
    err = refused(env, capsys, text, "plan", "(alice and 1 other account)", "VAULT_TOKEN")
    errors = [line for line in err.splitlines() if not line.startswith("warning: ")]
    assert len(errors) == 1, err
