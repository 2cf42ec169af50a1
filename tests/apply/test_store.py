"""The store (`apply.store.AccountWriter`), the only writer of account directories, used
directly on real directories: atomic writes, exact modes, never through a link, the
archive and its pruning, the record."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pytest

from bfprov.apply.store import AccountWriter, write_deliveries
from bfprov.errors import BfprovError
from bfprov.layout import ARCHIVE, PUBLISHED_FILE, RECORD_DIR, RECORD_FILE, SECRET_MODE
from bfprov.observed.records import read_record
from bfprov.publish.observe import Delivery, read_deliveries

if TYPE_CHECKING:
    from pathlib import Path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_write_lands_whole_with_its_mode_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    with AccountWriter(tmp_path, "alice", None) as w:
        w.write("client.key", b"secret bytes", SECRET_MODE)
        w.write("client.crt", b"public bytes", 0o644)
        w.write("client.crt", b"public bytes, again", 0o644)  # replaced, not appended
    alice = tmp_path / "alice"
    assert (alice / "client.key").read_bytes() == b"secret bytes"
    assert (alice / "client.crt").read_bytes() == b"public bytes, again"
    assert (mode(alice / "client.key"), mode(alice / "client.crt")) == (0o600, 0o644)
    assert mode(alice) == 0o700
    assert sorted(p.name for p in alice.iterdir()) == ["client.crt", "client.key"]


def test_a_file_is_private_from_its_first_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Created 0600 and empty, whatever the umask, before its own mode is set: the real
    calls run, each descriptor's mode and size is looked at as the mode is set."""
    seen: list[tuple[int, int]] = []
    real_fchmod = os.fchmod

    def watching_fchmod(fd: int, wanted: int) -> None:
        st = os.fstat(fd)
        seen.append((stat.S_IMODE(st.st_mode), st.st_size))
        real_fchmod(fd, wanted)

    monkeypatch.setattr(os, "fchmod", watching_fchmod)
    old_umask = os.umask(0)
    try:
        with AccountWriter(tmp_path, "alice", None) as w:
            w.write("client.crt", b"public", 0o644)
            w.write("client.key", b"secret", SECRET_MODE)
    finally:
        os.umask(old_umask)
    assert seen == [(0o600, 0), (0o600, 0)]
    assert mode(tmp_path / "alice" / "client.crt") == 0o644


def test_nothing_is_written_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "alice").symlink_to(outside)
    with pytest.raises(BfprovError):
        AccountWriter(tmp_path / "out", "alice", None)
    assert list(outside.iterdir()) == []


def test_a_path_that_climbs_out_is_refused(tmp_path: Path) -> None:
    with AccountWriter(tmp_path, "alice", None) as w, pytest.raises(BfprovError, match="refusing"):
        w.write("staged/../../escape", b"x", SECRET_MODE)
    assert not (tmp_path / "escape").exists()


def test_staged_files_move_into_place(tmp_path: Path) -> None:
    with AccountWriter(tmp_path, "alice", None) as w:
        w.write("staged/client.key", b"next key", SECRET_MODE)
        w.move("staged/client.key", "client.key")
        w.remove_empty_dir("staged")
        assert w.exists("client.key")
        assert not w.exists("staged/client.key")
    alice = tmp_path / "alice"
    assert (alice / "client.key").read_bytes() == b"next key"
    assert not (alice / "staged").exists()


def test_the_archive_keeps_relative_paths_makes_secrets_private_and_is_pruned(
    tmp_path: Path,
) -> None:
    for generation in range(3):
        with AccountWriter(tmp_path, "alice", None) as w:
            w.write("client.key", f"key {generation}".encode(), 0o640)
            w.write("client.crt", f"crt {generation}".encode(), 0o644)
            w.archive(["client.key", "client.crt", "not-there.pem"])
            archived = w.archive_dir()
            w.prune_archive(keep=2)
        where = tmp_path / "alice" / archived
        assert (where / "client.key").read_bytes() == f"key {generation}".encode()
        assert mode(where / "client.key") == SECRET_MODE  # 0640 before: key material
        assert mode(where / "client.crt") == 0o644
        assert not (tmp_path / "alice" / "client.key").exists()
    generations = sorted((tmp_path / "alice" / ARCHIVE).iterdir())
    assert [(g / "client.crt").read_bytes() for g in generations] == [b"crt 1", b"crt 2"]


def test_the_record_lists_what_is_there_and_is_private(tmp_path: Path) -> None:
    with AccountWriter(tmp_path, "alice", None) as w:
        w.write("client.key", b"key", SECRET_MODE)
        w.write("client.crt", b"crt", 0o644)
        w.write("client.pem", b"pem", SECRET_MODE)
        w.remove("client.pem")
        w.save_record()
    record = read_record(tmp_path / "alice")
    assert record is not None
    assert sorted(record.files) == ["client.crt", "client.key"]
    path = tmp_path / "alice" / RECORD_DIR / RECORD_FILE
    assert mode(path) == SECRET_MODE
    # A later writer starts from the record and keeps what it did not touch.
    with AccountWriter(tmp_path, "alice", record) as w:
        w.write("client.crt", b"new crt", 0o644)
        w.save_record()
    again = read_record(tmp_path / "alice")
    assert again is not None
    assert sorted(again.files) == ["client.crt", "client.key"]
    assert again.files["client.key"].sha256 == record.files["client.key"].sha256
    assert again.files["client.crt"].sha256 != record.files["client.crt"].sha256


def test_deliveries_are_written_private_and_read_back(tmp_path: Path) -> None:
    (tmp_path / "alice").mkdir()
    records = {
        "kubernetes k8s/a.yaml": Delivery("ab" * 32, "2030-01-01", None, "2026-01-01T00:00:00"),
        "vault x": Delivery(None, None, "3", "2026-01-01T00:00:00", "refused", "created"),
    }
    write_deliveries(tmp_path / "alice", records)
    assert read_deliveries(tmp_path / "alice") == records
    assert mode(tmp_path / "alice" / RECORD_DIR / PUBLISHED_FILE) == SECRET_MODE
