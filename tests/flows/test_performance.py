"""What keeps bfprov cheap, tested for behaviour (the timings live in bench/, not here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bfprov.cli import main

PROFILE = """\
version: 1
output_dir: certs
defaults:
  app_key: {env: BF_APP_KEY}
  outputs: [key, crt, pem, csr, cnf]
accounts:
  - name: alice
    username: alice
    password: {env: BF_PASSWORD}
    subject: {common_name: alice}
"""

HEAVY = ("requests", "rich.progress", "cryptography.hazmat.bindings._rust", "jinja2")


def _imported_after(args: list[str], tmp_path: Path) -> set[str]:
    code = (
        "import sys\nfrom bfprov.cli import main\n"
        f"code = main({args!r})\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    env = {**os.environ, "BF_APP_KEY": "k", "BF_PASSWORD": "p"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, check=True)  # fmt: skip
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1].replace("'", '"'))
    return set(loaded)


def test_help_and_validate_import_only_what_they_need(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    assert _imported_after(["--help"], tmp_path) == set()
    assert _imported_after(["validate", "--profiles", str(profile)], tmp_path) == set()


def test_plan_does_not_import_the_network_stack(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    assert "requests" not in _imported_after(["plan", "--profiles", str(profile)], tmp_path)


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the keys generated (real keys: the call is only counted)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    sizes: list[int] = []
    real = rsa.generate_private_key

    def counted(public_exponent: int, key_size: int) -> rsa.RSAPrivateKey:
        sizes.append(key_size)
        return real(public_exponent=public_exponent, key_size=key_size)

    monkeypatch.setattr(rsa, "generate_private_key", counted)
    return sizes


TWO = """\
version: 1
output_dir: certs
defaults:
  app_key: {env: BF_APP_KEY}
  outputs: [key, crt, pem, csr, cnf]
accounts:
  - name: alice
    username: alice
    password: {env: BF_PASSWORD}
    subject: {common_name: alice}
  - name: bob
    username: bob
    password: {env: BF_PASSWORD}
    subject: {common_name: bob}
"""


def test_apply_makes_exactly_the_keys_its_plan_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, made: list[int]
) -> None:
    monkeypatch.setenv("BF_APP_KEY", "k")
    monkeypatch.setenv("BF_PASSWORD", "p")
    profile = tmp_path / "p.yaml"
    profile.write_text(TWO)
    args = ["apply", "--yes", "--no-verify", "--profiles", str(profile)]
    assert main(args) == 0
    assert made == [2048, 2048]  # two accounts to create: two keys, not one more
    made.clear()
    assert main(args) == 0
    assert made == []  # nothing to do: no key made on speculation
    (tmp_path / "certs" / "bob" / "client-2048.pem").unlink()
    assert main(args) == 0
    assert made == []  # an update of derived files reuses the live key
    profile.write_text(TWO.replace("common_name: bob", "common_name: bob two"))
    assert main(args) == 0
    assert made == [2048]  # bob's rotation: one new key, alice untouched


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BF_APP_KEY", "k")
    monkeypatch.setenv("BF_PASSWORD", "p")
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    assert main(["apply", "--yes", "--no-verify", "--profiles", str(profile)]) == 0
    return profile


def _plan(profile: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert main(["plan", "--json", "--profiles", str(profile)]) == 0
    result: dict[str, object] = json.loads(capsys.readouterr().out)
    return result


def test_a_damaged_record_only_costs_a_deeper_look(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = fleet.parent / "certs" / "alice" / ".bfprov" / "record.json"
    # b"": what a crash can leave of it (the record is renamed into place but not synced).
    damages = (b"", b"{not json", b'{"files": {"client-2048.key": {"size": "x"}}}', b"[]")
    for damage in damages:
        record.write_bytes(damage)
        assert _plan(fleet, capsys)["changes"] == [], damage


@pytest.mark.parametrize("form", ["current", "version 1", "untagged facts"])
def test_a_record_of_another_format_is_not_trusted(
    form: str, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib

    account = fleet.parent / "certs" / "alice"
    path = account / ".bfprov" / "record.json"
    record = json.loads(path.read_bytes())
    assert record["version"] == 2
    assert record["files"]["client-2048.pem"]["facts"]["kind"] == "pem"
    # The pem now holds the certificate alone, and the record vouches for these bytes.
    pem = account / "client-2048.pem"
    pem.write_bytes((account / "client-2048.crt").read_bytes())
    st = pem.stat()
    record["files"]["client-2048.pem"].update(
        size=st.st_size, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns, ino=st.st_ino,
        sha256=hashlib.sha256(pem.read_bytes()).hexdigest(),
    )  # fmt: skip
    if form == "version 1":
        record["version"] = 1
    elif form == "untagged facts":
        for entry in record["files"].values():
            if entry["facts"]:
                del entry["facts"]["kind"]
    path.write_text(json.dumps(record))
    changes = _plan(fleet, capsys)["changes"]
    if form == "current":  # bfprov's own record, intact: trusted (the cache at work)
        assert changes == []
    else:  # ignored: every file is looked at afresh, and the tampering is found
        assert isinstance(changes, list) and len(changes) == 1
        assert any("client-2048.pem" in reason for reason in changes[0]["reasons"])


def test_a_record_of_another_version_keeps_its_login_check_only() -> None:
    from bfprov.observed.records import parse_record

    check = {"at": "2026-01-02T03:04:05+00:00", "live": {"loginStatus": "SUCCESS"}}
    files = {"client-2048.key": {"size": 1, "mtime_ns": 1, "ctime_ns": 1, "ino": 1,
                                 "sha256": "s", "facts": {"algorithm": "rsa"}}}  # fmt: skip
    record = parse_record(json.dumps({"version": 1, "files": files, "last_check": check}).encode())
    assert record.files == {} and record.last_check == check


def test_outputs_are_synced_before_their_rename_and_the_record_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BF_APP_KEY", "k")
    monkeypatch.setenv("BF_PASSWORD", "p")
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    synced: set[str] = set()
    renamed: dict[str, bool] = {}  # final name -> its temporary file was synced first
    real_fdatasync, real_replace = os.fdatasync, os.replace

    def fdatasync(fd: int) -> None:
        synced.add(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real_fdatasync(fd)

    def replace(src: str, dst: str, **kwargs: int) -> None:
        renamed[dst] = src in synced
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    monkeypatch.setattr(os, "replace", replace)
    assert main(["apply", "--yes", "--no-verify", "--profiles", str(profile)]) == 0
    assert renamed == {
        "client-2048.key": True,
        "client-2048.crt": True,
        "client-2048.pem": True,
        "client-2048.csr": True,
        "openssl.cnf": True,
        "record.json": False,  # a cache: a crash costs the next plan a deeper look
    }


def test_a_same_size_change_with_the_mtime_restored_is_noticed(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crt = fleet.parent / "certs" / "alice" / "client-2048.csr"
    st = crt.stat()
    data = bytearray(crt.read_bytes())
    data[100] = ord("A") if data[100] != ord("A") else ord("B")  # same size, one byte
    crt.write_bytes(bytes(data))
    os.utime(crt, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert crt.stat().st_size == st.st_size and crt.stat().st_mtime_ns == st.st_mtime_ns
    changes = _plan(fleet, capsys)["changes"]
    assert isinstance(changes, list) and changes, "a tampered file must be looked at again"


def test_the_entry_point_runs_commands(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    env = {**os.environ, "BF_APP_KEY": "k", "BF_PASSWORD": "p"}
    run = [sys.executable, "-m", "bfprov"]
    done = subprocess.run([*run, "apply", "--yes", "--no-verify", "--profiles", str(profile)],
                          cwd=tmp_path, env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "certs" / "alice" / "client-2048.key").is_file()
    again = subprocess.run([*run, "plan", "--detailed-exitcode", "--profiles", str(profile)],
                           cwd=tmp_path, env=env, capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
