"""Output people like to read, and the GitOps pieces around bfprov."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from bfprov.cli import main
from bfprov.views.schema import profile_schema

ROOT = Path(__file__).resolve().parents[2]
PROFILE = """\
version: 1
output_dir: certs
defaults:
  app_key: {env: BF_APP_KEY}
  key: {size: 1024}
  outputs: [key, crt, pem, cnf]
accounts:
  - {name: alice, username: alice, password: {env: P}, subject: {common_name: "a|b"}}
  - {name: bob, username: bob, password: {env: P}, subject: {common_name: bob}}
"""


def test_the_committed_schema_is_in_sync() -> None:
    committed = json.loads((ROOT / "profiles" / "bfprov.schema.json").read_text())
    assert committed == profile_schema(), "run: bfprov schema > profiles/bfprov.schema.json"
    assert committed["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize(
    "profile", sorted((ROOT / "profiles").glob("*.y*ml")), ids=lambda p: p.name
)
def test_every_example_profile_validates_and_names_the_schema(profile: Path) -> None:
    assert profile.read_text().startswith("# yaml-language-server: $schema=./bfprov.schema.json")
    assert main(["validate", "--profiles", str(profile)]) == 0


def _fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BF_APP_KEY", "k")
    monkeypatch.setenv("P", "p")
    profile = tmp_path / "fleet.yaml"
    profile.write_text(PROFILE)
    return profile


def test_plan_markdown_is_a_pull_request_comment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = _fleet(tmp_path, monkeypatch)
    assert main(["plan", "--markdown", "--profiles", str(profile)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### bfprov plan\n")
    assert "**2 to create, 0 to rotate" in out and "2 certificate upload(s)" in out
    assert "| account | action | upload | reasons |" in out
    assert "| `alice` | ➕ create | yes | new account: nothing on disk yet |" in out
    assert "\x1b[" not in out
    assert main(["-q", "apply", "--yes", "--no-verify", "--profiles", str(profile)]) == 0
    capsys.readouterr()
    assert main(["plan", "--markdown", "--profiles", str(profile)]) == 0
    assert "**No changes.** 2 account(s) match the profiles." in capsys.readouterr().out
    assert main(["plan", "--markdown", "--json", "--profiles", str(profile)]) == 1


def test_markdown_escapes_table_breakers() -> None:
    from bfprov.plan.model import Action, Change, Plan
    from bfprov.views.plan import plan_markdown

    plan = Plan(changes=(Change("a", Action.UPDATE, ("x | y", "back\\slash"), False),), noop=())
    assert "| `a` | ✏️ update | no | x \\| y<br>back\\\\slash |" in plan_markdown(plan)


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bfprov", *args], env={**os.environ, **env},
                          capture_output=True, text=True)  # fmt: skip


def test_colour_on_a_terminal_and_none_with_no_color(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = _fleet(tmp_path, monkeypatch)
    args = ["plan", "--profiles", str(profile)]
    coloured = _cli(args, {"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"})
    assert "\x1b[" in coloured.stdout  # Terraform-like coloured symbols on a terminal
    plain = _cli(args, {"NO_COLOR": "1"})
    assert "\x1b[" not in plain.stdout + plain.stderr
    assert "+ alice (create, upload needed)" in plain.stdout


def test_quiet_and_verbose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = _fleet(tmp_path, monkeypatch)
    assert main(["-q", "apply", "--yes", "--no-verify", "--profiles", str(profile)]) == 0
    quiet = capsys.readouterr()
    assert "bfprov will perform" not in quiet.out and "Apply complete" not in quiet.out
    assert "Upload each certificate" in quiet.out  # what the operator must do stays
    (tmp_path / "certs" / "alice" / "client-1024.pem").unlink()
    assert main(["-v", "apply", "--yes", "--no-verify", "--profiles", str(profile)]) == 0
    verbose = capsys.readouterr()
    assert "alice: wrote client-1024.pem" in verbose.err
    assert "profiles " in verbose.err and "CA bundle system" in verbose.err


def test_pre_commit_hook_and_ci_examples_are_well_formed() -> None:
    yaml = YAML(typ="safe")
    hooks = yaml.load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hooks[0]["id"] == "bfprov-validate" and hooks[0]["entry"] == "bfprov validate"
    github = yaml.load((ROOT / "examples" / "ci" / "github-actions.yml").read_text())
    gitlab = yaml.load((ROOT / "examples" / "ci" / "gitlab-ci.yml").read_text())
    text = json.dumps(github) + json.dumps(gitlab)
    for command in ("bfprov validate", "bfprov plan --markdown", "bfprov plan --detailed-exitcode",
                    "bfprov apply --yes", "secrets.BF_APP_KEY"):  # fmt: skip
        assert command in text, command
    assert set(github["jobs"]) == {"plan", "renewals", "apply"}


def test_init_writes_the_schema_beside_the_starter_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "--profiles", str(tmp_path / "profiles")]) == 0
    schema = json.loads((tmp_path / "profiles" / "bfprov.schema.json").read_text())
    assert schema == profile_schema()
    out = capsys.readouterr().out
    assert "Next steps" in out


def test_shell_completion_is_offered(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "--install-completion" in capsys.readouterr().out


def test_the_bfprov_process_exits_with_its_code_and_all_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m bfprov` exits with its code, once all it printed has arrived."""
    profile = _fleet(tmp_path, monkeypatch)
    env = {**os.environ, "BF_APP_KEY": "k", "P": "p", "NO_COLOR": "1"}

    def bfprov(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bfprov", *args], env=env, capture_output=True, text=True
        )

    changes = bfprov("plan", "--detailed-exitcode", "--json", "--profiles", str(profile))
    assert changes.returncode == 2, changes.stderr
    assert [c["account"] for c in json.loads(changes.stdout)["changes"]] == ["alice", "bob"]
    applied = bfprov("apply", "--yes", "--no-verify", "--profiles", str(profile))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.rstrip().endswith("mysecurity?showAPI=1")  # the last upload line
    broken = bfprov("validate", "--profiles", str(tmp_path / "missing.yaml"))
    assert broken.returncode == 1
    assert broken.stderr.count("\n") == 1 and "missing.yaml" in broken.stderr


def test_messages_print_emoji_codes_as_they_are(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path may hold `:fire:`; Rich would print an emoji in its place."""
    from bfprov import console

    console.stdout.cache_clear()
    console.stderr.cache_clear()
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    try:
        console.say("wrote /srv/a:fire:b/client-2048.crt")
        console.note("saved /srv/a:fire:b/plan.json")
        console.warn("output_dir /srv/a:smile:b is not ignored")
        console.error("cannot write /srv/a:x:b")
    finally:
        console.stdout.cache_clear()
        console.stderr.cache_clear()
    captured = capsys.readouterr()
    assert "/srv/a:fire:b/client-2048.crt" in captured.out
    for text in ("/srv/a:fire:b/plan.json", "/srv/a:smile:b", "/srv/a:x:b"):
        assert text in captured.err


def test_the_plan_names_each_write_to_a_target_in_text_and_markdown() -> None:
    from pathlib import Path

    from bfprov.desired.targets import KubernetesConfig, TargetRef
    from bfprov.plan.model import Action, Change, Plan, Publish, Stage
    from bfprov.views.plan import plan_markdown, plan_text

    def ref(label: str) -> TargetRef:  # the label is what the plan shows
        return TargetRef("a", KubernetesConfig(dir="k", namespace="n", name="x"), Path(), label)

    publish = Publish((ref("vault x"), ref("k8s y")))
    create = Change("a", Action.CREATE, ("new",), True, steps=(publish,))
    rotate = Change("b", Action.ROTATE, ("expired",), True, steps=(Stage((ref("aws z"),)),))
    plan = Plan(changes=(create, rotate), noop=())
    text = plan_text(plan).plain
    assert "new\n        will publish to vault x\n        will publish to k8s y\n" in text
    assert "expired\n        will write AWSPENDING to aws z\n" in text
    assert "Plan: 1 to create, 1 to rotate, 0 to update, 0 to promote, 2 to publish, " in text
    markdown = plan_markdown(plan)
    assert "0 to promote, 2 to publish, 0 orphaned" in markdown
    assert "| new<br>will publish to vault x<br>will publish to k8s y |" in markdown
    assert "| expired<br>will write AWSPENDING to aws z |" in markdown
    data = plan.to_json()
    assert data["summary"]["publish"] == 0  # SPEC: accounts by action, unchanged
    changes = data["changes"]
    assert isinstance(changes, list)
    assert changes[0]["publish_to"] == ["vault x", "k8s y"] and "stage_to" not in changes[0]
    assert changes[1]["stage_to"] == ["aws z"] and "publish_to" not in changes[1]
