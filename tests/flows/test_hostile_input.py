"""A corpus of hostile and broken profiles, each run through the real CLI.

Every case goes through `validate`, `plan` and `apply --yes --no-verify` and must answer
exit 1 with one clear message that names the profile file (and `line:col` where the
problem has a place in the YAML), never a traceback, never a secret, and must write
nothing at all: the output directory does not exist afterwards and no file under
tmp_path changes.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bfprov.cli import main

# Line numbers of the cases below count on this profile:
# 1 version, 2 output_dir, 3 defaults, 4 jurisdiction, 5 app_key, 6 subject, 7 accounts,
# 8 name, 9 username, 10 password, 11 subject; appended lines start at 12.
BASE = """\
version: 1
output_dir: out
defaults:
  jurisdiction: com
  app_key: {env: BF_APP_KEY}
  subject: {country: GB, organization: Example Ltd}
accounts:
  - name: alice
    username: alice@example.com
    password: {env: BF_PASSWORD_ALICE}
    subject: {common_name: alice bot}
"""
BOB = """\
  - name: bob
    username: bob
    password: {env: BF_PASSWORD_BOB}
    subject: {common_name: bob bot}
"""

OK, FAIL = 0, 1
ALL_FAIL = {"validate": FAIL, "plan": FAIL, "apply": FAIL}
COMMANDS = {
    "validate": ["validate"],
    "plan": ["plan"],
    "apply": ["apply", "--yes", "--no-verify"],
}
UNSET_ENV = "BFPROV_HOSTILE_TEST_UNSET_P12_PASSWORD"
MISSING_FILE = "no-such-p12-password.txt"
BIG = 12 * 1024 * 1024


def sub(old: str, new: str, text: str = BASE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def billion_laughs() -> str:
    lines = ["version: 1", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 12)]
    return "\n".join(lines) + "\nx: *a11\n"


@dataclass(frozen=True)
class Case:
    """One hostile profile.

    `files` maps names (relative to tmp_path/profiles) to contents; `target` is what
    --profiles names (relative to tmp_path). Every string of `names` must appear in
    stderr (`{root}` stands for tmp_path, `{profiles}` for tmp_path/profiles); `where`
    is the `line:col` that must follow the first of them. `expect` are further parts of
    the message. `secret` must never appear in any output.
    """

    id: str
    files: dict[str, str | bytes]
    expect: tuple[str, ...] = ()
    where: str | None = None
    names: tuple[str, ...] = ("{profiles}/profile.yaml",)
    target: str = "profiles/profile.yaml"
    secret: str | None = None
    exits: dict[str, int] = field(default_factory=lambda: dict(ALL_FAIL))
    xfail: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)  # files outside profiles/ (tmp_path)


def one(
    case_id: str,
    text: str | bytes,
    *expect: str,
    where: str | None = None,
    secret: str | None = None,
    names: tuple[str, ...] = ("{profiles}/profile.yaml",),
    exits: dict[str, int] | None = None,
    xfail: dict[str, str] | None = None,
) -> Case:
    """A case of one file, `profiles/profile.yaml`."""
    return Case(
        case_id,
        {"profile.yaml": text},
        expect,
        where,
        secret=secret,
        names=names,
        exits=exits or dict(ALL_FAIL),
        xfail=xfail or {},
    )


CASES: list[Case] = [
    # --- YAML syntax ------------------------------------------------------------------
    one(
        "yaml-unclosed-bracket",
        BASE + "    outputs: [key, crt\n",
        "YAML syntax error",
        where="13:1",
    ),
    one(
        "yaml-bad-indentation",
        sub("    username: alice@example.com\n", "   username: alice@example.com\n"),
        "YAML syntax error",
        where="9:4",
    ),
    one(
        "yaml-tab-indentation",
        sub("    username: alice@example.com\n", "\tusername: alice@example.com\n"),
        "YAML syntax error",
        where="9:1",
    ),
    # --- wrong types ----------------------------------------------------------------
    one(
        "accounts-is-a-number",
        sub(BASE[BASE.index("accounts:") :], "accounts: 3\n"),
        "accounts: expected a list, found a number",
        where="7:11",
    ),
    one(
        "subject-is-a-list",
        sub("subject: {common_name: alice bot}", "subject: []"),
        "accounts[0].subject: expected a mapping, found a list",
        where="11:14",
    ),
    one(
        "key-size-is-a-word",
        BASE + '    key: {size: "big"}\n',
        "accounts[0].key.size: 'big' is not a whole number",
        where="12:17",
    ),
    one(
        "key-size-is-an-enormous-number",
        BASE + "    key: {size: " + "9" * 5000 + "}\n",
        "this value cannot be read",
        where="12:17",
    ),
    # --- unknown keys ---------------------------------------------------------------
    one(
        "unknown-key-top-level",
        BASE + "colour: red\n",
        "colour: unknown key",
        where="12:1",
    ),
    one(
        "unknown-key-defaults",
        sub("  jurisdiction: com\n", "  jurisdicton: com\n"),
        "defaults.jurisdicton: unknown key; did you mean 'jurisdiction'?",
        where="4:3",
    ),
    one(
        "unknown-key-account",
        BASE + "    colour: red\n",
        "accounts[0].colour: unknown key",
        where="12:5",
    ),
    one(
        "unknown-key-subject",
        sub("{common_name: alice bot}", "{common_name: alice bot, comon_name: x}"),
        "accounts[0].subject.comon_name: unknown key; did you mean 'common_name'?",
        where="11:39",
    ),
    one(
        "unknown-key-key",
        BASE + "    key: {size: 2048, bits: 2048}\n",
        "accounts[0].key.bits: unknown key",
        where="12:23",
    ),
    one(
        "unknown-key-p12",
        BASE + "    p12: {profile: modern, cipher: aes}\n",
        "accounts[0].p12.cipher: unknown key",
        where="12:28",
    ),
    # --- duplicate account names ------------------------------------------------------
    one(
        "duplicate-name-in-one-file",
        BASE + BOB.replace("- name: bob", "- name: alice"),
        "accounts[1].name: duplicate account name 'alice'; first defined at",
        where="12:11",
    ),
    Case(
        "duplicate-name-across-files",
        {
            "a.yaml": BASE,
            "b.yaml": "version: 1\noutput_dir: out\ndefaults:\n  app_key: {env: BF_APP_KEY}\n"
            + "accounts:\n"
            + BOB
            + BOB.replace("bob", "alice"),
        },
        ("accounts[1].name: duplicate account name 'alice'; first defined at", "a.yaml:8:11"),
        where="10:11",
        names=("{profiles}/b.yaml", "{profiles}/a.yaml"),
        target="profiles",
    ),
    # --- Betfair's rules --------------------------------------------------------------
    one(
        "key-size-4096",
        BASE + "    key: {size: 4096}\n",
        "accounts[0].key.size: key size 4096 is not accepted by Betfair",
        where="12:17",
    ),
    one(
        "key-size-512",
        BASE + "    key: {size: 512}\n",
        "accounts[0].key.size: key size 512 is not accepted by Betfair",
        where="12:17",
    ),
    one(
        "key-type-ec",
        BASE + "    key: {type: ec}\n",
        "accounts[0].key.type: 'ec' is not accepted: only rsa",
        where="12:17",
    ),
    one(
        "jurisdiction-dk",
        BASE + "    jurisdiction: dk\n",
        "accounts[0].jurisdiction: jurisdiction 'dk' is refused",
        "Danish residents cannot use Betfair's non-interactive (bot) login",
        where="12:19",
    ),
    one(
        "jurisdiction-dk-in-defaults",
        sub("  jurisdiction: com\n", "  jurisdiction: DK\n"),
        "defaults.jurisdiction: jurisdiction 'dk' is refused",
        "Danish",
        where="4:17",
    ),
    one(
        "jurisdiction-uk",
        BASE + "    jurisdiction: uk\n",
        "accounts[0].jurisdiction: unknown jurisdiction 'uk'",
        where="12:19",
    ),
    one(
        "common-name-65-characters",
        sub("common_name: alice bot", "common_name: " + "c" * 65),
        "accounts[0].subject.common_name: '" + "c" * 40 + "...' is 65 characters long; "
        "at most 64 are allowed",
        where="11:28",
    ),
    one(
        "common-name-missing",
        sub("subject: {common_name: alice bot}", "subject: {locality: London}"),
        "accounts[0]: subject.common_name is required",
        where="8:5",
    ),
    one(
        "country-lower-case",
        sub("country: GB", "country: gb"),
        "defaults.subject.country: country 'gb' must be a two-letter ISO 3166 code",
        where="6:22",
    ),
    one(
        "country-three-letters",
        sub("{common_name: alice bot}", "{common_name: alice bot, country: GBR}"),
        "accounts[0].subject.country: country 'GBR' must be a two-letter ISO 3166 code",
        where="11:48",
    ),
    one(
        "email-non-ascii",
        sub("{common_name: alice bot}", "{common_name: alice bot, email_address: jörg@example.de}"),
        "accounts[0].subject.email_address: 'jörg@example.de' does not match the pattern",
        where="11:54",
    ),
    # --- unsafe account names -----------------------------------------------------------
    *(
        one(
            f"name-{label}",
            sub("- name: alice", f"- name: {yaml_value}"),
            "accounts[0].name: ",
            "is not a safe directory name",
            where="8:11",
        )
        for label, yaml_value in [
            ("path-traversal", "../evil"),
            ("slash", "a/b"),
            ("hidden", ".hidden"),
            ("upper-case", "UPPER"),
            ("empty", "''"),
            ("65-characters", "n" * 65),
            ("nul-escape", '"con\\0"'),
            ("absolute", "/etc"),
        ]
    ),
    one(
        "name-raw-nul-byte",
        sub("- name: alice", "- name: con\x00"),
        "character U+0000 is not allowed in YAML",
        where="8:14",
    ),
    # --- secrets ------------------------------------------------------------------------
    one(
        "literal-password",
        sub("password: {env: BF_PASSWORD_ALICE}", "password: hunter2-S3cret!"),
        "accounts[0].password: a secret must be a reference",
        where="10:15",
        secret="hunter2-S3cret!",
    ),
    one(
        "literal-app-key",
        sub("app_key: {env: BF_APP_KEY}", "app_key: 'AppKey-ZYXW-0123456789'"),
        "defaults.app_key: a secret must be a reference",
        where="5:12",
        secret="AppKey-ZYXW-0123456789",
    ),
    one(
        "literal-p12-password",
        BASE + "    p12: {password: P12-Pa55w0rd-literal}\n",
        "accounts[0].p12.password: a secret must be a reference",
        where="12:21",
        secret="P12-Pa55w0rd-literal",
    ),
    one(
        "literal-password-as-a-list",
        sub("password: {env: BF_PASSWORD_ALICE}", "password: [Li5t-S3cret]"),
        "accounts[0].password: a secret must be a reference",
        where="10:15",
        secret="Li5t-S3cret",
    ),
    one(
        "literal-secret-in-a-duplicate-key",
        sub(
            "  app_key: {env: BF_APP_KEY}\n",
            "  app_key: Dup-S3cret-one\n  app_key: Dup-S3cret-two\n",
        ),
        "duplicate key 'app_key'",
        where="6:3",
        secret="Dup-S3cret-",
    ),
    one(
        "secret-ref-env-and-file",
        sub("{env: BF_PASSWORD_ALICE}", "{env: BF_PASSWORD_ALICE, file: /run/pw}"),
        "accounts[0].password: a secret reference takes exactly one of 'env' or 'file'",
        where="10:15",
    ),
    one(
        "missing-secret-env-variable",
        BASE + f"    outputs: [key, crt, p12]\n    p12: {{password: {{env: {UNSET_ENV}}}}}\n",
        f"alice: p12.password: environment variable {UNSET_ENV} is not set",
        names=(UNSET_ENV,),
        exits={"validate": OK, "plan": OK, "apply": FAIL},
    ),
    one(
        "missing-secret-file",
        BASE + f"    outputs: [key, crt, p12]\n    p12: {{password: {{file: {MISSING_FILE}}}}}\n",
        "alice: p12.password: secret file",
        "does not exist",
        names=(f"{{profiles}}/{MISSING_FILE}",),
        exits={"validate": OK, "plan": OK, "apply": FAIL},
    ),
    # --- the shape of the file ----------------------------------------------------------
    one("empty-file", "", "the profile is empty"),
    one("only-comments", "# a profile\n# to come\n", "the profile is empty"),
    one(
        "not-utf-8",
        sub("- name: alice", "- name: al\udcff\udcfeice").encode("utf-8", "surrogateescape"),
        "not valid UTF-8",
        where="8:13",
    ),
    one(
        "latin-1-in-a-subject",
        sub("alice bot", "J\xf6rg").encode("latin-1"),
        "not valid UTF-8",
        where="11:29",
    ),
    one(
        "top-level-list",
        "- version: 1\n- output_dir: out\n",
        "the profile must be a mapping",
        "not a list",
        where="1:1",
    ),
    one(
        "top-level-scalar",
        "hello world\n",
        "the profile must be a mapping",
        "not a string",
        where="1:1",
    ),
    one(
        "version-2",
        sub("version: 1", "version: 2"),
        "version: unsupported profile version 2",
        where="1:10",
    ),
    one(
        "version-missing",
        sub("version: 1\n", ""),
        "version: required key is missing",
        where="1:1",
    ),
    one(
        "version-as-string",
        sub("version: 1", 'version: "1"'),
        "version: unsupported profile version '1'",
        where="1:10",
    ),
    one(
        "version-true",
        sub("version: 1", "version: true"),
        "version: unsupported profile version",
        where="1:10",
    ),
    one(
        "yaml-anchor-and-alias",
        sub(
            "  app_key: {env: BF_APP_KEY}\n",
            "  app_key: &key {env: BF_APP_KEY}\n  password: *key\n",
        ),
        "YAML anchors and aliases are not allowed",
        where="5:12",
    ),
    one(
        "yaml-merge-key",
        BASE + "    <<: {jurisdiction: it}\n",
        "YAML merge keys (<<) are not allowed",
        where="12:5",
    ),
    one(
        "yaml-python-tag",
        sub("username: alice@example.com", "username: !!python/object/apply:os.system [id]"),
        "YAML tags are not allowed",
        where="9:15",
    ),
    one(
        "billion-laughs",
        billion_laughs(),
        "YAML anchors and aliases are not allowed",
        where="2:5",
    ),
    one(
        "twelve-mebibytes",
        BASE + ("# padding " + "x" * 1013 + "\n") * (BIG // 1024),
        "larger than 10 MiB; refusing to read it",
    ),
    one(
        "deeply-nested-flow",
        BASE + "    subject2: " + "[" * 5000 + "]" * 5000 + "\n",
        "YAML nested too deeply",
    ),
    one(
        "deeply-nested-blocks",
        BASE + "".join(f"{'  ' * (i + 2)}k{i}:\n" for i in range(200)),
        "YAML nested too deeply",
    ),
    # --- where the profile is and where it points ---------------------------------------
    Case(
        "profile-path-does-not-exist",
        {},
        ("no such profile file or directory",),
        names=("{profiles}/nowhere.yaml",),
        target="profiles/nowhere.yaml",
    ),
    Case(
        "profile-directory-without-yaml",
        {"README.md": "profiles go here\n", "profile.json": "{}\n"},
        ("no *.yaml or *.yml profile in this directory",),
        names=("{profiles}",),
        target="profiles",
    ),
    Case(
        "output-dir-is-a-regular-file",
        {"profile.yaml": sub("output_dir: out", "output_dir: ../occupied")},
        ("occupied is not a directory",),
        names=("{root}/occupied",),
        exits={"validate": OK, "plan": FAIL, "apply": FAIL},
        extra={"occupied": "this is a regular file, not a directory\n"},
    ),
    Case(
        "output-dir-below-a-regular-file",
        {"profile.yaml": sub("output_dir: out", "output_dir: ../occupied/certs")},
        ("not a directory",),
        names=("{root}/occupied",),
        exits={"validate": OK, "plan": FAIL, "apply": FAIL},
        extra={"occupied": "this is a regular file, not a directory\n"},
    ),
]

PARAMS = [
    pytest.param(
        case,
        command,
        id=f"{case.id}-{command}",
        marks=[pytest.mark.xfail(strict=True, reason=case.xfail[command])]
        if command in case.xfail
        else [],
    )
    for case in CASES
    for command in COMMANDS
]


def snapshot(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry under root: its kind, its mode and (for files) its content digest."""
    result: dict[str, tuple[str, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                result[str(path.relative_to(root))] = ("file", st.st_mode, digest)
            else:
                result[str(path.relative_to(root))] = ("other", st.st_mode, "")
    return result


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("BFPROV_OUTPUT_DIR", "BFPROV_PROFILES", UNSET_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BF_APP_KEY", "app-key-ENV-value")
    monkeypatch.setenv("BF_PASSWORD_ALICE", "alice-ENV-password")
    monkeypatch.setenv("BF_PASSWORD_BOB", "bob-ENV-password")
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory either
    return tmp_path


def fill(template: str, root: Path) -> str:
    return template.replace("{root}", str(root)).replace("{profiles}", str(root / "profiles"))


def build(case: Case, root: Path) -> Path:
    folder = root / "profiles"
    folder.mkdir()
    for name, content in case.files.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    for name, content in case.extra.items():
        (root / name).write_text(content, encoding="utf-8")
    return root / case.target


@pytest.mark.parametrize(("case", "command"), PARAMS)
def test_hostile_profile_is_refused_and_nothing_is_written(
    env: Path, capsys: pytest.CaptureFixture[str], case: Case, command: str
) -> None:
    target = build(case, env)
    before = snapshot(env)

    start = time.perf_counter()
    code = main([*COMMANDS[command], "--profiles", str(target)])
    elapsed = time.perf_counter() - start
    out, err = capsys.readouterr()

    assert code == case.exits[command], (out, err)
    assert "Traceback" not in out + err
    if case.secret is not None:
        assert case.secret not in out + err
    for secret in ("app-key-ENV-value", "alice-ENV-password", "bob-ENV-password"):
        assert secret not in out + err
    if code == FAIL:
        names = [fill(name, env) for name in case.names]
        for name in names:
            assert name in err, err
        if case.where is not None:
            assert f"{names[0]}:{case.where}: " in err, err
        for part in case.expect:
            assert part in err, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected one clear message, got:\n{err}"
        assert lines[0].startswith("error: ")
    if case.id == "billion-laughs":
        # Expanded, it would take minutes and gigabytes; refused, milliseconds. 10 s tells
        # the two apart with a wide margin on a loaded machine.
        assert elapsed < 10.0, f"the alias bomb took {elapsed:.2f} s"
    assert not (env / "profiles" / "out").exists(), "the output directory was created"
    assert snapshot(env) == before, "something under tmp_path changed"


@pytest.mark.parametrize("reference", [f"env: {UNSET_ENV}", f"file: {MISSING_FILE}"])
def test_a_missing_secret_stops_apply_before_any_account_is_written(
    env: Path, capsys: pytest.CaptureFixture[str], reference: str
) -> None:
    """The weaker property that does hold today: no account file is written."""
    profile = env / "profiles" / "profile.yaml"
    profile.parent.mkdir()
    profile.write_text(
        BASE + f"    outputs: [key, crt, p12]\n    p12: {{password: {{{reference}}}}}\n"
    )

    code = main(["apply", "--yes", "--no-verify", "--profiles", str(profile)])
    err = capsys.readouterr().err

    assert code == FAIL
    assert reference.split(": ")[1] in err
    assert not (env / "profiles" / "out" / "alice").exists()


SUBPROCESS_CASES = [
    c
    for c in CASES
    if c.id
    in {
        "yaml-tab-indentation",
        "not-utf-8",
        "top-level-scalar",
        "billion-laughs",
        "deeply-nested-flow",
        "literal-password",
        "name-raw-nul-byte",
    }
]


@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=[c.id for c in SUBPROCESS_CASES])
def test_no_traceback_reaches_the_terminal(env: Path, case: Case) -> None:
    target = build(case, env)
    before = snapshot(env)
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith("BFPROV_") and k != UNSET_ENV
    }

    for command in COMMANDS.values():
        result = subprocess.run(
            [sys.executable, "-m", "bfprov", *command, "--profiles", str(target)],
            capture_output=True,
            text=True,
            env=environment,
            cwd=env,
            timeout=60,
            check=False,
        )
        assert result.returncode == FAIL, result
        assert "Traceback" not in result.stdout + result.stderr
        named = fill(case.names[0], env)
        assert named in result.stderr
        if case.where is not None:
            assert f"{named}:{case.where}: " in result.stderr
        if case.secret is not None:
            assert case.secret not in result.stdout + result.stderr
    assert snapshot(env) == before


# --- hostile state on disk: bfprov's own record replaced by something else -------------


def applied_fleet(root: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    profile = root / "profiles" / "profile.yaml"
    profile.parent.mkdir()
    profile.write_text(BASE.replace("  jurisdiction: com\n", "  key: {size: 1024}\n"))
    assert main(["apply", "--yes", "--no-verify", "--profiles", str(profile)]) == 0
    capsys.readouterr()
    return profile


def run_cli(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BFPROV_")}
    return subprocess.run(
        [sys.executable, "-m", "bfprov", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("command", [["plan"], ["apply", "--yes", "--no-verify"], ["status"]])
def test_a_directory_in_place_of_the_record_is_no_traceback(
    env: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    profile = applied_fleet(env, capsys)
    record = env / "profiles" / "out" / "alice" / ".bfprov" / "record.json"
    record.unlink()
    record.mkdir()

    result = run_cli([*command, "--profiles", str(profile)], env, timeout=60)

    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode in (0, 1)
    if result.returncode == 1:
        assert str(record) in result.stderr


def test_a_fifo_in_place_of_the_record_does_not_hang_plan(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = applied_fleet(env, capsys)
    record = env / "profiles" / "out" / "alice" / ".bfprov" / "record.json"
    record.unlink()
    os.mkfifo(record, 0o600)

    try:
        result = run_cli(["plan", "--profiles", str(profile)], env, timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("plan blocked opening a FIFO planted in place of .bfprov/record.json")
    assert "Traceback" not in result.stdout + result.stderr
