"""What the processes bfprov starts receive: hooks and sops get an allow-listed environment.

A fleet's shell holds every account's password, the Vault tokens and the AWS keys; a hook
of one account, or sops, gets none of them: only the SPEC's allow-list, the names in
`hooks.pass_env` (hooks only), and the BFPROV_* variables of the event. A failed hook is
reported with the last lines of its output. Publication fails here against a Vault
address where nothing listens: a real refused connection, no server needed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from bfprov import crypto
from bfprov.cli import main
from bfprov.desired.targets import KubernetesConfig
from bfprov.publish.kinds import make_target
from tests.support.servers import AgeIdentity, MakeBundle, free_port

SECRETS = {
    "ALICE_PASSWORD": "alice-password-SECRET",
    "BOB_PASSWORD": "bob-password-SECRET",
    "ALICE_VAULT_TOKEN": "alice-token-SECRET",
    "BOB_VAULT_TOKEN": "bob-token-SECRET",
    "BF_APP_KEY": "app-key-SECRET",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-SECRET",
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLESECRET",
    "SOME_RANDOM_VARIABLE": "random-SECRET",
}

# Logs its argv and environment, prints a few lines, then fails: a pager that is down.
HOOK = """\
import json, os, sys
with open(sys.argv[1], "a") as fh:
    fh.write(json.dumps({"argv": sys.argv[2:], "env": dict(os.environ)}) + "\\n")
for i in range(1, 9):
    print(f"retrying {i}", flush=True)
print(f"paging failed for {sys.argv[2]}", file=sys.stderr)
sys.exit(3)
"""


def write_profile(root: Path, port: int, generation: int = 1, passed: str = "HOOK_SETTING") -> Path:
    hook = json.dumps(
        [sys.executable, str(root / "hook.py"), str(root / "hooks.jsonl"), "{account}"]
    )
    accounts = ""
    for name in ("alice", "bob"):
        upper = name.upper()
        accounts += (
            f"  - name: {name}\n"
            f"    username: {name}\n"
            f"    password: {{env: {upper}_PASSWORD}}\n"
            f"    subject: {{common_name: {name} gen {generation}}}\n"
            "    publish:\n"
            "      - vault:\n"
            f"          address: http://127.0.0.1:{port}\n"
            f"          token: {{env: {upper}_VAULT_TOKEN}}\n"
            "          path: bots/{account}\n"
        )
    profile = root / "fleet.yaml"
    profile.write_text(
        "version: 1\n"
        "output_dir: certs\n"
        "defaults:\n"
        "  app_key: {env: BF_APP_KEY}\n"
        "  key: {size: 1024}\n"
        "  outputs: [key, crt]\n"
        "  hooks:\n"
        f"    on_live: {hook}\n"
        f"    on_failure: {hook}\n"
        f"    pass_env: [{passed}]\n"
        "    timeout: 30s\n"
        "accounts:\n" + accounts
    )
    return profile


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytest.importorskip("hvac")  # the [vault] extra
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOOK_SETTING", "passed")
    (tmp_path / "hook.py").write_text(HOOK)
    return write_profile(tmp_path, free_port())


def hook_runs(root: Path) -> list[dict[str, object]]:
    log = root / "hooks.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def fingerprint(path: Path) -> str:
    return crypto.inspect_certificate(path.read_bytes()).fingerprint_sha256


def test_a_hook_gets_the_allow_list_and_pass_env_never_a_secret(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = fleet.parent
    assert main(["apply", "--yes", "--no-verify", "--profiles", str(fleet)]) == 1
    err = capsys.readouterr().err
    runs = hook_runs(root)
    assert sorted((r["argv"], r["env"]["BFPROV_EVENT"]) for r in runs) == [  # type: ignore[index]
        (["alice"], "failed"),
        (["bob"], "failed"),
    ]
    allowed = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "HOOK_SETTING"}
    for run in runs:
        env = run["env"]
        assert isinstance(env, dict)
        assert env["HOOK_SETTING"] == "passed"
        assert {
            k for k in env if k not in allowed and not k.startswith(("LC_", "BFPROV_"))
        } == set()
        assert not [name for name in SECRETS if name in env]
        assert not [value for value in SECRETS.values() if value in json.dumps(env)]
    # The failed hook is reported with the end of its output, in the report and the trail.
    assert f"alice: hook {sys.executable}: exit status 3 after " in err
    assert "paging failed for alice" in err and "retrying 8" in err
    assert not [value for value in SECRETS.values() if value in err]
    capsys.readouterr()
    assert main(["history", "--json", "--profiles", str(fleet)]) == 0
    events = json.loads(capsys.readouterr().out)
    hooks = {e["account"]: e for e in events if e["event"] == "hook"}
    assert "paging failed for bob" in hooks["bob"]["detail"]
    assert "exit status 3" in hooks["bob"]["detail"]


def test_on_failure_of_a_delivery_gets_the_fingerprint_of_the_pair_that_failed(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = fleet.parent
    port = int(fleet.read_text().split("http://127.0.0.1:")[1].split("\n")[0])
    assert main(["apply", "--yes", "--no-verify", "--profiles", str(fleet)]) == 1
    live = fingerprint(root / "certs" / "alice" / "client-1024.crt")
    first = [r for r in hook_runs(root) if r["argv"] == ["alice"]]
    assert [r["env"]["BFPROV_FINGERPRINT"] for r in first] == [live]  # type: ignore[index]

    # A rotation stages a new pair; the live one still fails to reach Vault: on_failure is
    # about the live pair, not the staged one.
    write_profile(root, port, generation=2)
    assert main(["apply", "--yes", "--no-verify", "--profiles", str(fleet)]) == 1
    capsys.readouterr()
    staged = fingerprint(root / "certs" / "alice" / "staged" / "client-1024.crt")
    assert staged != live
    runs = [r for r in hook_runs(root) if r["argv"] == ["alice"]]
    assert [r["env"]["BFPROV_EVENT"] for r in runs] == ["failed", "failed"]  # type: ignore[index]
    assert runs[-1]["env"]["BFPROV_FINGERPRINT"] == live  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "reader"),
    [
        ("BOB_PASSWORD", "bob: password"),
        ("ALICE_VAULT_TOKEN", "alice: publish[0].vault.token"),
        ("BF_APP_KEY", "alice: app_key"),
    ],
)
def test_pass_env_refuses_a_name_a_secret_reference_reads(
    fleet: Path, capsys: pytest.CaptureFixture[str], name: str, reader: str
) -> None:
    root = fleet.parent
    write_profile(root, free_port(), passed=f"HOOK_SETTING, {name}")
    capsys.readouterr()
    assert main(["validate", "--profiles", str(fleet)]) == 1
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if name in line]
    assert "hooks.pass_env" in line and f"{name!r}" in line and reader in line
    assert "Traceback" not in err
    assert not [value for value in SECRETS.values() if value in err]
    assert main(["apply", "--yes", "--no-verify", "--profiles", str(fleet)]) == 1
    assert not (root / "certs").exists()  # nothing written


@pytest.mark.parametrize("name", ["1BAD", "WITH SPACE", "A=B", ""])
def test_pass_env_refuses_what_is_not_a_variable_name(
    fleet: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    write_profile(fleet.parent, free_port(), passed=json.dumps(name))
    capsys.readouterr()
    assert main(["validate", "--profiles", str(fleet)]) == 1
    err = capsys.readouterr().err
    assert "pass_env" in err and repr(name) in err and "Traceback" not in err


def test_sops_gets_the_allow_list_only(
    tmp_path: Path,
    sops_env: AgeIdentity,
    make_bundle: MakeBundle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A `sops` first on PATH that writes down its environment, then runs the real one.
    real = shutil.which("sops")
    assert real is not None
    bin_dir, dump = tmp_path / "bin", tmp_path / "sops-env.json"
    bin_dir.mkdir()
    wrapper = bin_dir / "sops"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"open({str(dump)!r}, 'w').write(json.dumps(dict(os.environ)))\n"
        f"os.execv({real!r}, [{real!r}, *sys.argv[1:]])\n"
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    config = KubernetesConfig(
        dir="k8s",
        namespace="bots",
        name="betfair-{account}",
        sops_age_recipients=[sops_env.recipient],
    )
    bundle = make_bundle()
    make_target(config, "alice", tmp_path, timeout=20).publish(bundle, last_version=None)
    env = json.loads(dump.read_text())
    assert not [name for name in SECRETS if name in env]
    assert "SOPS_AGE_KEY_FILE" not in env  # decryption's key: encryption never needs it
    allowed = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR"}
    assert {k for k in env if k not in allowed and not k.startswith("LC_")} == set()
    # The real sops did encrypt: the manifest holds the pair, for the recipient.
    text = (tmp_path / "k8s" / "betfair-alice.yaml").read_text()
    assert "ENC[" in text and sops_env.recipient in text and "PRIVATE KEY" not in text


def test_git_gets_the_allow_list_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = shutil.which("git")
    if real is None:
        pytest.skip("git is not installed")
    bin_dir, dump = tmp_path / "bin", tmp_path / "git-env.json"
    bin_dir.mkdir()
    wrapper = bin_dir / "git"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"open({str(dump)!r}, 'a').write(json.dumps(dict(os.environ)) + '\\n')\n"
        f"os.execv({real!r}, [{real!r}, *sys.argv[1:]])\n"
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    import subprocess

    subprocess.run([real, "init", "-q", str(tmp_path / "repo")], check=True)
    profile = tmp_path / "repo" / "fleet.yaml"
    profile.write_text(
        "version: 1\noutput_dir: certs\ndefaults: {app_key: {env: BF_APP_KEY}}\naccounts:\n"
        "  - {name: alice, username: alice, password: {env: ALICE_PASSWORD}, "
        "subject: {common_name: alice}}\n"
    )
    assert main(["plan", "--profiles", str(profile)]) == 0
    assert "not ignored" in capsys.readouterr().err  # git did answer
    for line in dump.read_text().splitlines():
        env = json.loads(line)
        assert not [name for name in SECRETS if name in env]


def test_a_failed_staging_names_the_staged_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("boto3")  # the [aws] extra
    from bfprov.plan.snapshot import load
    from bfprov.publish.deliver import Delivered, stage
    from bfprov.settings import load_settings

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    profile = tmp_path / "fleet.yaml"

    def write(generation: int) -> None:
        profile.write_text(
            "version: 1\noutput_dir: certs\n"
            "defaults: {app_key: {env: BF_APP_KEY}, key: {size: 1024}}\naccounts:\n"
            "  - name: alice\n    username: alice\n    password: {env: ALICE_PASSWORD}\n"
            f"    subject: {{common_name: alice gen {generation}}}\n"
            "    publish:\n      - aws_secrets_manager:\n          region: eu-west-1\n"
            f"          name: bots/{{account}}\n          endpoint_url: http://127.0.0.1:{port}\n"
        )

    port = free_port()
    write(1)
    assert main(["apply", "--yes", "--no-verify", "--profiles", str(profile)]) == 1
    write(2)
    assert main(["apply", "--yes", "--no-verify", "--profiles", str(profile)]) == 1
    capsys.readouterr()
    [target] = load(load_settings(profile)).targets
    delivered = Delivered()
    stage(target, target.publications, delivered)  # AWSPENDING: unreachable
    assert delivered.failed
    staged = fingerprint(target.directory / "staged" / "client-1024.crt")
    assert delivered.failed_fingerprint == staged
