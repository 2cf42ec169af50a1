from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bfprov.desired.fast_yaml import Unusual, load_fast
from bfprov.desired.models import Jurisdiction, Output, SecretRef
from bfprov.desired.profile import MAX_PROFILE_BYTES, ProfileError, load_profiles
from bfprov.desired.yaml_reader import YamlProblem, compose
from bfprov.settings import Settings

SPEC_PROFILE = """\
version: 1
output_dir: ../certs            # relative to this file; env BFPROV_OUTPUT_DIR overrides
defaults:                       # applies to every account of this file
  jurisdiction: com
  app_key: {env: BF_APP_KEY}
  key: {size: 2048}
  subject:
    country: GB
    state: London
    locality: London
    organization: Example Trading Ltd
    organizational_unit: Security Team
  validity:
    days: 365
    renew_before: 30d           # a duration (d, h) or a share of the lifetime ("25%")
  outputs: [key, crt, pem, p12, csr, cnf]
  p12: {profile: modern, password: {env: BF_P12_PASSWORD}}
accounts:
  - name: alice                 # [a-z0-9][a-z0-9._-]{0,63}: the directory name
    username: alice@example.com
    password: {env: BF_PASSWORD_ALICE}
    jurisdiction: it
    subject: {common_name: alice bot}
  - name: bob
    username: bob
    password: {file: /run/secrets/bob}
    subject: {common_name: bob bot, organization: Bob Ltd}
    validity: {renew_before: 25%}
    p12: {profile: legacy}
"""

# A minimal valid profile; the line numbers of the bad-input table below count on it:
# 1 version, 2 output_dir, 3 accounts, 4 name, 5 username, 6 password, 7 app_key, 8 subject.
HEAD = "version: 1\noutput_dir: out\n"
ALICE = (
    "accounts:\n"
    "  - name: alice\n"
    "    username: alice\n"
    "    password: {env: PW}\n"
    "    app_key: {env: AK}\n"
    "    subject: {common_name: alice bot}\n"
)
VALID = HEAD + ALICE
BOB = (
    "  - name: bob\n"
    "    username: bob\n"
    "    password: {env: PW}\n"
    "    app_key: {env: AK}\n"
    "    subject: {common_name: bob bot}\n"
)


def settings(output_dir: Path | None = None) -> Settings:
    return Settings(output_dir=output_dir)


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def problem(path: Path, out: Path | None = None) -> str:
    with pytest.raises(ProfileError) as info:
        load_profiles(path, settings(out))
    return str(info.value)


def test_spec_profile_loads_with_defaults_merged(tmp_path: Path) -> None:
    profile = write(tmp_path / "profiles" / "fleet.yaml", SPEC_PROFILE)

    desired = load_profiles(profile, settings())

    assert [t.name for t in desired.targets] == ["alice", "bob"]
    alice, bob = (t.account for t in desired.targets)
    assert alice.jurisdiction is Jurisdiction.IT  # the account overrides the default
    assert bob.jurisdiction is Jurisdiction.COM  # inherited
    assert alice.app_key == SecretRef(env="BF_APP_KEY")
    assert alice.password == SecretRef(env="BF_PASSWORD_ALICE")
    assert bob.password == SecretRef(file="/run/secrets/bob")
    assert alice.key.size == 2048
    # subject keys merge: the account's CN and O on top of the defaults' C, ST, L, O, OU
    assert alice.subject.common_name == "alice bot"
    assert alice.subject.country == "GB"
    assert alice.subject.organization == "Example Trading Ltd"
    assert bob.subject.organization == "Bob Ltd"
    assert bob.subject.organizational_unit == "Security Team"
    # sections merge field by field
    assert alice.validity.days == bob.validity.days == 365
    assert alice.validity.renew_before.duration == timedelta(days=30)
    assert bob.validity.renew_before.share == 0.25
    assert alice.p12.profile == "modern"
    assert bob.p12.profile == "legacy"
    assert bob.p12.password == SecretRef(env="BF_P12_PASSWORD")
    assert alice.outputs == tuple(Output)
    # output_dir is relative to the profile file, and absolute
    certs = (tmp_path / "certs").resolve()
    assert desired.output_dirs == (certs,)
    assert all(t.output_dir == certs for t in desired.targets)
    assert desired.targets[0].directory == certs / "alice"
    assert desired.targets[0].source == profile.resolve()
    assert desired.targets[0].templates is None
    assert desired.warnings == ()


def test_output_dir_setting_overrides_every_profile(tmp_path: Path) -> None:
    profile = write(tmp_path / "profiles" / "fleet.yaml", SPEC_PROFILE)
    override = tmp_path / "elsewhere"

    desired = load_profiles(profile, settings(override))

    assert desired.output_dirs == (override.resolve(),)
    assert {t.output_dir for t in desired.targets} == {override.resolve()}


def test_output_dir_setting_replaces_a_missing_output_dir(tmp_path: Path) -> None:
    profile = write(tmp_path / "p.yaml", "version: 1\n" + ALICE)

    desired = load_profiles(profile, settings(tmp_path / "out"))

    assert desired.output_dirs == ((tmp_path / "out").resolve(),)


def test_templates_resolved_against_the_profile(tmp_path: Path) -> None:
    (tmp_path / "profiles" / "tpl").mkdir(parents=True)
    profile = write(tmp_path / "profiles" / "p.yaml", HEAD + "templates: tpl\n" + ALICE)

    desired = load_profiles(profile, settings())

    assert desired.targets[0].templates == (tmp_path / "profiles" / "tpl").resolve()


def test_directory_profiles_are_merged_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "profiles"
    write(folder / "b.yml", "version: 1\noutput_dir: ../certs\naccounts:\n" + BOB)
    write(
        folder / "a.yaml",
        VALID.replace("- name: alice", "- name: carol") + BOB.replace("bob", "dan"),
    )
    write(folder / "c.yaml", "version: 1\noutput_dir: /srv/other\n")  # no accounts
    write(folder / "notes.txt", "not a profile")
    write(folder / ".hidden.yaml", "not: [valid")
    (folder / "sub").mkdir()
    write(folder / "sub" / "deep.yaml", "not: [valid")

    desired = load_profiles(folder, settings())

    assert [t.name for t in desired.targets] == ["carol", "dan", "bob"]
    assert desired.output_dirs == (
        (folder / "out").resolve(),
        (tmp_path / "certs").resolve(),
        Path("/srv/other").resolve(),
    )
    assert desired.targets[2].source == (folder / "b.yml").resolve()


def test_example_profile_loads(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "profiles" / "example.yaml"

    desired = load_profiles(example, settings())

    assert [t.account.jurisdiction.value for t in desired.targets] == ["com", "it", "es"]
    assert desired.output_dirs == ((example.parent.parent / "certs").resolve(),)


def test_1024_bit_key_is_a_warning(tmp_path: Path) -> None:
    profile = write(tmp_path / "p.yaml", VALID + "    key: {size: 1024}\n" + BOB)

    desired = load_profiles(profile, settings())

    assert [t.account.key.size for t in desired.targets] == [1024, 2048]
    assert desired.warnings == (
        f"{profile}:9:17: accounts[0].key.size: 1024-bit keys are accepted by Betfair "
        "but weak; prefer 2048",
    )


def test_1024_bit_key_from_defaults_points_at_defaults(tmp_path: Path) -> None:
    text = HEAD + "defaults:\n  key: {size: 1024}\n" + ALICE
    profile = write(tmp_path / "p.yaml", text)

    desired = load_profiles(profile, settings())

    assert desired.warnings == (
        f"{profile}:4:15: defaults.key.size: 1024-bit keys are accepted by Betfair but weak; "
        "prefer 2048 (applies to 1 account)",
    )


def fleet(count: int, start: int = 0) -> str:
    return "".join(
        BOB.replace("- name: bob", f"- name: bot{i}").replace("bob bot", f"bot {i}")
        for i in range(start, start + count)
    )


def test_a_warning_from_defaults_is_given_once_for_the_whole_fleet(tmp_path: Path) -> None:
    text = (
        HEAD
        + "defaults:\n  key: {size: 1024}\naccounts:\n"
        + fleet(25)
        + BOB.replace("- name: bob", "- name: own") + "    key: {size: 1024}\n"  # line 136
        + BOB.replace("- name: bob", "- name: strong") + "    key: {size: 2048}\n"
        + fleet(25, start=25)
    )  # fmt: skip
    profile = write(tmp_path / "fleet.yaml", text)

    desired = load_profiles(profile, settings())

    assert [t.account.key.size for t in desired.targets].count(1024) == 51
    assert desired.warnings == (
        f"{profile}:4:15: defaults.key.size: 1024-bit keys are accepted by Betfair but weak; "
        "prefer 2048 (applies to 50 accounts)",
        f"{profile}:136:17: accounts[25].key.size: 1024-bit keys are accepted by Betfair but "
        "weak; prefer 2048",
    )


def test_validate_prints_a_defaults_warning_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bfprov.cli import main

    monkeypatch.delenv("BFPROV_OUTPUT_DIR", raising=False)
    text = HEAD + "defaults:\n  key: {size: 1024}\naccounts:\n" + fleet(50)
    profile = write(tmp_path / "fleet.yaml", text)

    assert main(["validate", "--profiles", str(profile)]) == 0
    err = capsys.readouterr().err

    warnings = [line for line in err.splitlines() if "1024-bit" in line]
    assert len(warnings) == 1, err
    assert warnings[0].endswith("(applies to 50 accounts)")


BAD_INPUTS: list[tuple[str, str | bytes, list[str], str | None]] = [
    # (id, profile.yaml content, substrings of the message, a secret that must not appear)
    ("unknown-top-level-key", HEAD + "colour: red\n" + ALICE, ["3:1: colour: unknown key"], None),
    (
        "unknown-key-in-defaults",
        HEAD + "defaults:\n  jurisdicton: it\n" + ALICE,
        ["4:3: defaults.jurisdicton: unknown key; did you mean 'jurisdiction'?"],
        None,
    ),
    (
        "unknown-key-in-account",
        VALID + "    colour: red\n",
        ["9:5: accounts[0].colour: unknown key; expected one of: jurisdiction, "],
        None,
    ),
    (
        "unknown-key-in-subject",
        VALID.replace("alice bot}", "alice bot, comon_name: x}"),
        ["8:39: accounts[0].subject.comon_name: unknown key; did you mean 'common_name'?"],
        None,
    ),
    (
        "wrong-type",
        VALID + "    validity: {days: soon}\n",
        ["9:22: accounts[0].validity.days: 'soon' is not a whole number"],
        None,
    ),
    (
        "accounts-not-a-list",
        HEAD + "accounts: {name: alice}\n",
        ["3:11: accounts: expected a list, found a mapping"],
        None,
    ),
    (
        "defaults-empty",
        HEAD + "defaults:\n" + ALICE,
        ["3:1: defaults: expected a mapping, found null"],
        None,
    ),
    (
        "account-not-a-mapping",
        HEAD + "accounts:\n  - alice\n",
        ["4:5: accounts[0]: expected a mapping, found a string"],
        None,
    ),
    (
        "jurisdiction-dk",
        VALID + "    jurisdiction: dk\n",
        ["9:19: accounts[0].jurisdiction: ", "Danish residents cannot use", "bot) login"],
        None,
    ),
    (
        "unknown-jurisdiction",
        VALID + "    jurisdiction: uk\n",
        ["9:19: accounts[0].jurisdiction: unknown jurisdiction 'uk'"],
        None,
    ),
    (
        "key-size-4096",
        VALID + "    key: {size: 4096}\n",
        ["9:17: accounts[0].key.size: key size 4096 is not accepted by Betfair"],
        None,
    ),
    (
        "key-type-ec",
        VALID + "    key: {type: ec}\n",
        ["9:17: accounts[0].key.type: 'ec' is not accepted: only rsa"],
        None,
    ),
    (
        "common-name-too-long",
        VALID.replace("alice bot", "x" * 65),
        [
            "8:28: accounts[0].subject.common_name: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' "
            "is 65 characters long; at most 64 are allowed"
        ],
        None,
    ),
    (
        "common-name-missing",
        VALID.replace("common_name: alice bot", "country: GB"),
        ["4:5: accounts[0]: subject.common_name is required"],
        None,
    ),
    (
        "name-path-traversal",
        VALID.replace("- name: alice", "- name: ../evil"),
        ["4:11: accounts[0].name: account name", "is not a safe directory name"],
        None,
    ),
    (
        "name-upper-case",
        VALID.replace("- name: alice", "- name: Alice"),
        ["4:11: accounts[0].name: account name", "is not a safe directory name"],
        None,
    ),
    (
        "name-hidden",
        VALID.replace("- name: alice", "- name: .hidden"),
        ["4:11: accounts[0].name: account name", "is not a safe directory name"],
        None,
    ),
    (
        "name-65-characters",
        VALID.replace("- name: alice", "- name: " + "a" * 65),
        ["4:11: accounts[0].name: account name", "is not a safe directory name"],
        None,
    ),
    (
        "country-three-letters",
        VALID.replace("alice bot}", "alice bot, country: gbr}"),
        ["8:48: accounts[0].subject.country: country", "two-letter ISO 3166 code"],
        None,
    ),
    (
        "literal-password",
        VALID.replace("password: {env: PW}", "password: hunter2-Secret!"),
        ["6:15: accounts[0].password: a secret must be a reference"],
        "hunter2-Secret!",
    ),
    (
        "literal-app-key",
        VALID.replace("app_key: {env: AK}", "app_key: 'AppKey-0123456789'"),
        ["7:14: accounts[0].app_key: a secret must be a reference"],
        "AppKey-0123456789",
    ),
    (
        "literal-p12-password",
        VALID + "    p12: {password: p12-Pa55word}\n",
        ["9:21: accounts[0].p12.password: a secret must be a reference"],
        "p12-Pa55word",
    ),
    (
        "literal-password-in-defaults-and-duplicated",
        HEAD + "defaults:\n  password: sEcReT-1\n  password: sEcReT-2\n" + ALICE,
        ["5:3: duplicate key 'password'"],
        "sEcReT-",
    ),
    (
        "secret-ref-env-and-file",
        VALID.replace("{env: PW}", "{env: PW, file: /run/pw}"),
        ["6:15: accounts[0].password: a secret reference takes exactly one of 'env' or 'file'"],
        None,
    ),
    (
        "renew-before-bad-unit",
        VALID + "    validity: {renew_before: 30x}\n",
        ["9:30: accounts[0].validity.renew_before: renew_before '30x' is not a duration"],
        None,
    ),
    (
        "renew-before-equals-validity",
        VALID + "    validity: {days: 365, renew_before: 365d}\n",
        ["4:5: accounts[0]: validity.renew_before 365d is as long as the validity (365 days)"],
        None,
    ),
    (
        "renew-before-100-percent",
        VALID + "    validity: {renew_before: 100%}\n",
        ["9:30: accounts[0].validity.renew_before: ", "between 0% and 100%"],
        None,
    ),
    (
        "renew-before-from-defaults",
        HEAD + "defaults:\n  validity: {days: 10, renew_before: 10d}\n" + ALICE,
        ["6:5: accounts[0]: validity.renew_before 10d", "may be inherited from defaults"],
        None,
    ),
    (
        "duplicate-account-name",
        VALID + BOB.replace("- name: bob", "- name: alice"),
        ["9:11: accounts[1].name: duplicate account name 'alice'; first defined at ", ":4:11"],
        None,
    ),
    (
        "version-2",
        VALID.replace("version: 1", "version: 2"),
        ["1:10: version: unsupported profile version 2; this bfprov reads version 1"],
        None,
    ),
    (
        "version-as-string",
        VALID.replace("version: 1", "version: '1'"),
        ["1:10: version: unsupported profile version '1'"],
        None,
    ),
    ("version-missing", VALID.replace("version: 1\n", ""), ["1:1: version: required"], None),
    (
        "yaml-syntax-error",
        VALID.replace("username: alice", "username: alice: bob"),
        ["5:20: YAML syntax error", "mapping values are not allowed here"],
        None,
    ),
    (
        "yaml-unclosed-flow",
        VALID + "    outputs: [key, crt\n",
        ["10:1: YAML syntax error: expected ',' or ']'", "(while parsing a flow sequence at 9:14)"],
        None,
    ),
    ("duplicate-key", VALID + "    username: again\n", ["9:5: duplicate key 'username'"], None),
    ("top-level-list", "- version: 1\n", ["1:1: the profile must be a mapping", "a list"], None),
    ("top-level-scalar", "just text\n", ["1:1: the profile must be a mapping", "a string"], None),
    ("empty-file", "", ["profile.yaml: the profile is empty"], None),
    ("comments-only", "# nothing yet\n", ["profile.yaml: the profile is empty"], None),
    (
        "not-utf-8",
        (VALID.replace("- name: alice", "- name: al\udcffice")).encode("utf-8", "surrogateescape"),
        ["4:13: not valid UTF-8"],
        None,
    ),
    ("control-character", VALID + "    \x07\n", ["9:5: character U+0007 is not allowed"], None),
    (
        "anchor",
        HEAD + "defaults:\n  app_key: &ak {env: AK}\n" + ALICE,
        ["4:12: YAML anchors and aliases are not allowed"],
        None,
    ),
    (
        "alias",
        VALID + "    jurisdiction: *j\n",
        ["9:19: YAML anchors and aliases are not allowed"],
        None,
    ),
    (
        "merge-key",
        VALID + "    <<: {jurisdiction: it}\n",
        ["9:5: YAML merge keys (<<) are not allowed"],
        None,
    ),
    (
        "python-tag",
        VALID.replace("username: alice", "username: !!python/object/apply:os.system [id]"),
        ["5:15: YAML tags are not allowed"],
        None,
    ),
    (
        "local-tag",
        VALID + "    jurisdiction: !tld com\n",
        ["9:19: YAML tags are not allowed"],
        None,
    ),
    (
        "two-documents",
        VALID + "---\nversion: 1\n",
        ["9:1: a profile holds a single YAML document"],
        None,
    ),
    (
        "nested-too-deeply",
        VALID + "    subject2: " + "[" * 200 + "]" * 200 + "\n",
        ["YAML nested too deeply"],
        None,
    ),
    (
        "p12-without-password",
        VALID + "    outputs: [key, crt, p12]\n",
        ["4:5: accounts[0]: outputs include p12, so p12.password"],
        None,
    ),
    (
        "outputs-missing-crt",
        VALID + "    outputs: [key, pem]\n",
        ["4:5: accounts[0]: outputs must include key and crt (missing: crt)"],
        None,
    ),
    (
        "outputs-unknown-format",
        VALID + "    outputs: [key, crt, zip]\n",
        ["9:25: accounts[0].outputs[2]: 'zip' is not one of key, crt, pem, p12, csr, cnf"],
        None,
    ),
    (
        "password-missing",
        VALID.replace("    password: {env: PW}\n", ""),
        ["4:5: accounts[0].password: required; set it on the account or in defaults"],
        None,
    ),
    (
        "username-missing",
        VALID.replace("    username: alice\n", ""),
        ["4:5: accounts[0].username: required key is missing"],
        None,
    ),
    (
        "output-dir-not-set",
        VALID.replace("output_dir: out\n", ""),
        ["profile.yaml: output_dir is not set (set it in the profile or BFPROV_OUTPUT_DIR)"],
        None,
    ),
    (
        "templates-not-a-directory",
        HEAD + "templates: nowhere\n" + ALICE,
        ["3:12: templates: 'nowhere' is not a directory"],
        None,
    ),
]


@pytest.mark.parametrize(
    ("content", "expected", "secret"),
    [pytest.param(c, e, s, id=i) for i, c, e, s in BAD_INPUTS],
)
def test_bad_input_is_reported_with_place_and_path(
    tmp_path: Path, content: str | bytes, expected: list[str], secret: str | None
) -> None:
    profile = write(tmp_path / "profile.yaml", content)

    message = problem(profile)

    assert message.startswith(f"{profile}")
    assert len(message.splitlines()) == 1  # one problem, reported once
    for part in expected:
        assert part in message
    if secret is not None:
        assert secret not in message


def test_several_problems_in_one_file_are_all_reported(tmp_path: Path) -> None:
    text = (
        VALID.replace("alice bot", "x" * 65)
        + "    jurisdiction: dk\n"
        + "    key: {size: 4096}\n"
        + BOB.replace("- name: bob", "- name: Bob").replace("{env: PW}", "hunter2-xyz")
        + BOB.replace("- name: bob", "- name: carol") + "    outputs: [key]\n"
        + BOB.replace("bob", "alice")
    )  # fmt: skip
    profile = write(tmp_path / "p.yaml", text)

    lines = problem(profile).splitlines()

    assert lines == [
        f"{profile}:8:28: accounts[0].subject.common_name: '{'x' * 40}...' is 65 characters "
        "long; at most 64 are allowed",
        f"{profile}:9:19: accounts[0].jurisdiction: jurisdiction 'dk' is refused: Danish "
        "residents cannot use Betfair's non-interactive (bot) login",
        f"{profile}:10:17: accounts[0].key.size: key size 4096 is not accepted by Betfair: "
        "use 2048 (or 1024)",
        f"{profile}:11:11: accounts[1].name: account name 'Bob' is not a safe directory "
        "name: lower-case letters, digits, '.', '_' and '-', at most 64, starting with a "
        "letter or digit",
        f"{profile}:13:15: accounts[1].password: a secret must be a reference, "
        "{env: NAME} or {file: PATH}, never a literal value",
        f"{profile}:16:5: accounts[2]: outputs must include key and crt (missing: crt)",
        f"{profile}:22:11: accounts[3].name: duplicate account name 'alice'; "
        f"first defined at {profile}:4:11",
    ]


def test_duplicate_account_names_across_files_name_both_places(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", VALID)
    write(
        tmp_path / "b.yaml",
        "version: 1\noutput_dir: out\naccounts:\n" + BOB + BOB.replace("bob", "alice"),
    )

    message = problem(tmp_path)

    assert message == (
        f"{tmp_path / 'b.yaml'}:9:11: accounts[1].name: duplicate account name 'alice'; "
        f"first defined at {tmp_path / 'a.yaml'}:4:11"
    )


def test_problems_of_every_file_are_reported(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", VALID.replace("version: 1", "version: 3"))
    write(tmp_path / "b.yaml", "- not a mapping\n")
    write(
        tmp_path / "c.yaml", VALID.replace("- name: alice", "- name: c") + "    key: {size: 512}\n"
    )

    lines = problem(tmp_path).splitlines()

    assert [line.split(":", 1)[0] for line in lines] == [
        str(tmp_path / name) for name in ("a.yaml", "b.yaml", "c.yaml")
    ]


def test_billion_laughs_is_refused_fast(tmp_path: Path) -> None:
    lines = ["version: 1", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    profile = write(tmp_path / "lol.yaml", "\n".join(lines) + "\n")

    start = time.perf_counter()
    message = problem(profile)
    elapsed = time.perf_counter() - start

    assert message == f"{profile}:2:5: YAML anchors and aliases are not allowed"
    # Expanding the bomb (9**10 nodes) would take minutes and gigabytes; a refusal takes
    # milliseconds. 10 s tells the two apart with a wide margin on a loaded machine.
    assert elapsed < 10.0


def test_file_over_10_mib_is_refused_unread(tmp_path: Path) -> None:
    profile = write(tmp_path / "big.yaml", VALID + "#" * MAX_PROFILE_BYTES + "\n")

    assert problem(profile) == f"{profile}: larger than 10 MiB; refusing to read it"


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    assert "no such profile file or directory" in problem(tmp_path / "nowhere")


def test_directory_without_profiles_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "README.md", "profiles go here")

    assert problem(tmp_path) == f"{tmp_path}: no *.yaml or *.yml profile in this directory"


# The fast reader (parser events straight to data) must agree with the node reader that
# places problems: whenever the fast one accepts a text, both give the same data.
PLAIN = [
    "alice", "a b", "yes", "No", "on", "true", "False", "~", "null", "0", "-1", "0o17",
    "0x1F", "1_000", "1e3", "1.5", ".inf", "-.Inf", "2024-01-01", "2001-12-14t21:59:43.10-05:00",
    "30d", "25%", "12:30", "+1", "0b101", "007", "'quoted'", '"dq \\t"', "!!str 5", "! x", "",
]  # fmt: skip
ODD = ["2024-13-45", "9" * 5000, "<<", "!!int 5", "&a 1", "*a", "!x y", "?", "[x]"]
SCALAR = st.sampled_from(PLAIN * 12 + ODD)  # the odd ones rarely, or no text gets through
KEYS = st.text("abcdefghij_", min_size=1, max_size=6) | st.sampled_from(
    ["version", "1", "true", "~", "'a'", "a b"] * 6 + ODD
)
FLOW = st.recursive(
    SCALAR,
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]")
        | st.lists(st.tuples(KEYS, inner), max_size=3).map(
            lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
        )
    ),
    max_leaves=8,
)
BLOCK_ENTRY = st.tuples(KEYS, FLOW).map(lambda kv: f"{kv[0]}: {kv[1]}\n") | st.tuples(
    KEYS, st.lists(FLOW, max_size=3)
).map(lambda kv: f"{kv[0]}:\n" + "".join(f"  - {item}\n" for item in kv[1]))
DOCUMENT = st.lists(BLOCK_ENTRY, max_size=4).map("".join) | st.tuples(
    st.lists(BLOCK_ENTRY, max_size=2).map("".join), st.sampled_from(["---\n", "...\n", "- x\n"])
).map("".join)


def typed(value: Any) -> Any:
    if isinstance(value, dict):
        return {typed(k): typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, repr(value))


@hypothesis_settings(deadline=None, max_examples=300)
@given(DOCUMENT)
def test_fast_reader_agrees_with_node_reader(text: str) -> None:
    try:
        fast, fast_places = load_fast(text)
    except Unusual:
        return
    try:
        composed, places = compose("p.yaml", text)
    except YamlProblem as exc:
        pytest.fail(f"the fast reader accepted what the node reader refuses: {exc}")
    assert typed(fast) == typed(composed)
    assert (fast_places is None) == (places is None)
    if fast_places is not None and places is not None:
        assert fast_places.places.keys() == places.places.keys()
        for loc in places.places:
            for key in (False, True):
                assert fast_places.locate(loc, key=key) == places.locate(loc, key=key), loc


def test_fast_reader_takes_the_usual_profile() -> None:
    data, places = load_fast(SPEC_PROFILE)
    assert data["accounts"][1]["validity"] == {"renew_before": "25%"}
    assert places is not None
    assert places.locate(("accounts", 1, "validity", "renew_before")) == (28, 30, 4)
    assert places.locate(("accounts", 1, "validity", "renew_before"), key=True) == (28, 16, 4)


def test_labels_merge_key_by_key_over_the_defaults(tmp_path: Path) -> None:
    text = (
        HEAD
        + "defaults:\n  labels: {team: risk, tier: gold}\n"
        + ALICE + "    labels: {tier: silver, region: eu-west/1}\n"
        + BOB
    )  # fmt: skip
    profile = write(tmp_path / "p.yaml", text)

    alice, bob = (t.account for t in load_profiles(profile, settings()).targets)

    assert alice.labels == {"team": "risk", "tier": "silver", "region": "eu-west/1"}
    assert bob.labels == {"team": "risk", "tier": "gold"}


def test_no_labels_is_an_empty_mapping(tmp_path: Path) -> None:
    desired = load_profiles(write(tmp_path / "p.yaml", VALID), settings())

    assert desired.targets[0].account.labels == {}


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ("{'bad key': x}", "9:14: accounts[0].labels['bad key']: label key 'bad key' is not valid"),
        ("{-team: x}", "9:14: accounts[0].labels['-team']: label key '-team' is not valid"),
        ("{" + "k" * 64 + ": x}", f"label key '{'k' * 40}...' is not valid"),
        ("{team: " + "v" * 64 + "}", f"accounts[0].labels.team: label value '{'v' * 40}...' is"),
        ("{tier: 1}", "9:20: accounts[0].labels.tier: label value 1 must be a string"),
        ('{tier: "a\\tb"}', "label value 'a\\tb' must not contain control characters"),
        ("[team]", "9:13: accounts[0].labels: expected a mapping, found a list"),
    ],
)
def test_bad_labels_quote_the_key_or_value(tmp_path: Path, labels: str, expected: str) -> None:
    profile = write(tmp_path / "p.yaml", VALID + f"    labels: {labels}\n")

    message = problem(profile)

    assert len(message.splitlines()) == 1
    assert expected in message


# Every refused choice, pattern or range quotes the value it refused (SPEC: "Messages
# quote the offending value"), cut short and with control characters escaped.
QUOTED = [
    (
        "    outputs: [key, crt, pfxx]\n",
        "outputs[2]: 'pfxx' is not one of key, crt, pem, p12, csr, cnf",
    ),
    (
        "    p12: {profile: modren}\n",
        "accounts[0].p12.profile: 'modren' is not one of modern, legacy",
    ),
    ("    key: {type: dsa}\n", "accounts[0].key.type: 'dsa' is not accepted: only rsa"),
    ("    key: {size: 3072}\n", "accounts[0].key.size: key size 3072 is not accepted"),
    ('    jurisdiction: "u\\x1bk"\n', "unknown jurisdiction 'u\\x1bk'"),
    ("    subject: {common_name: a, country: gbr}\n", "country 'gbr' must be"),
    ("    validity: {days: 0}\n", "accounts[0].validity.days: 0 is too small: at least 1"),
    ("    validity: {days: 4000}\n", "accounts[0].validity.days: 4000 is too large: at most 3650"),
    ("    validity: {days: 1.5}\n", "accounts[0].validity.days: 1.5 is not a whole number"),
    ("    validity: {renew_before: 2w}\n", "renew_before '2w' is not a duration"),
    ("    validity: {renew_before: 7}\n", "renew_before: 7 is not a duration"),
    ("    validity: {renew_jitter: 10%}\n", "renew_jitter '10%' must be a duration"),
    ('    subject: {common_name: "a\\x07b"}\n', "common_name: 'a\\x07b' must not contain control"),
    (
        "    subject: {common_name: a, email_address: nobody}\n",
        "'nobody' does not match the pattern",
    ),
    ("    username: " + "u" * 300 + "\n", f"username: '{'u' * 40}...' is 300 characters long"),
]


@pytest.mark.parametrize(("extra", "expected"), QUOTED, ids=[e for _, e in QUOTED])
def test_messages_quote_the_offending_value(tmp_path: Path, extra: str, expected: str) -> None:
    text = (
        VALID.replace("    subject: {common_name: alice bot}\n", "")
        if "subject" in extra
        else VALID
    )
    if "username" in extra:
        text = text.replace("    username: alice\n", "")
    profile = write(tmp_path / "p.yaml", text + extra)

    message = problem(profile)

    assert len(message.splitlines()) == 1, message
    assert expected in message


@pytest.mark.parametrize(
    "extra",
    [
        "    password: {env: 'Hunter2 Secret'}\n",
        "    app_key: {env: Hunter2-Secret}\n",
        "    p12: {password: {env: 'Hunter2:Secret'}}\n",
        "    p12: {password: {file: ''}, profile: legacy}\n",
        "    password: {env: PW, token: Hunter2-Secret}\n",
    ],
)
def test_secret_fields_never_quote_what_was_written(tmp_path: Path, extra: str) -> None:
    text = VALID.replace("    password: {env: PW}\n", "").replace("    app_key: {env: AK}\n", "")
    if "password:" not in extra:
        text += "    password: {env: PW}\n"
    if "app_key:" not in extra:
        text += "    app_key: {env: AK}\n"
    profile = write(tmp_path / "p.yaml", text + extra)

    message = problem(profile)

    assert "Hunter2" not in message
    assert ("password" in message) or ("app_key" in message)
