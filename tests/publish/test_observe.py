"""Observing publications (`publish.observe`): from bfprov's records alone (refresh=False,
as `status` and `plan --no-refresh` do), and from plain Kubernetes manifests (files)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bfprov.apply.store import write_deliveries
from bfprov.desired.models import Desired
from bfprov.layout import PUBLISHED_FILE, RECORD_DIR
from bfprov.publish.observe import Delivery, observe_publications, read_deliveries
from tests.support.fleet import profile_text

if TYPE_CHECKING:
    from pathlib import Path

LoadDesired = Callable[[str], Desired]

TARGETS = """\
    publish:
      - kubernetes: {dir: k8s, namespace: bots, name: 'a-{account}'}
      - kubernetes: {dir: k8s, namespace: bots, name: 'b-{account}'}
"""
PROFILE = profile_text("alice", "bob", own={"alice": TARGETS})

AT = "2026-01-01T00:00:00+00:00"


def test_without_refresh_the_record_says_what_each_target_holds(
    load_desired: LoadDesired, tmp_path: Path
) -> None:
    desired = load_desired(PROFILE)
    alice = next(t for t in desired.targets if t.name == "alice")
    first, second = alice.publications
    (tmp_path / "certs" / "alice").mkdir(parents=True)
    write_deliveries(
        alice.directory,
        {
            first.label: Delivery("f" * 64, "2027-01-01", None, AT),
            second.label: Delivery("e" * 64, None, None, AT, error="refused", owed="created"),
        },
    )
    states = observe_publications(desired, refresh=False)
    assert list(states) == ["alice"]  # bob names no target
    a, b = states["alice"]
    assert (a.label, a.held_fingerprint, a.holds_something, a.error) == (
        first.label, "f" * 64, True, None,
    )  # fmt: skip
    # The last attempt failed: the record vouches for nothing there.
    assert (b.label, b.held_fingerprint, b.holds_something) == (second.label, None, False)
    assert b.recorded is not None and (b.recorded.error, b.recorded.owed) == ("refused", "created")
    assert not (tmp_path / "k8s").exists()  # nothing was looked at, nothing written


def test_without_a_record_nothing_is_held(load_desired: LoadDesired) -> None:
    states = observe_publications(load_desired(PROFILE), refresh=False)
    assert [(s.held_fingerprint, s.recorded) for s in states["alice"]] == [(None, None)] * 2


def test_a_damaged_record_is_taken_for_no_record(load_desired: LoadDesired, tmp_path: Path) -> None:
    desired = load_desired(PROFILE)
    records = tmp_path / "certs" / "alice" / RECORD_DIR
    records.mkdir(parents=True)
    (records / PUBLISHED_FILE).write_text('{"kubernetes x": {"at": 3}, "y": [')
    assert read_deliveries(records.parent) == {}
    states = observe_publications(desired, refresh=False)
    assert [s.recorded for s in states["alice"]] == [None, None]


def test_with_refresh_a_manifest_target_is_read(load_desired: LoadDesired, tmp_path: Path) -> None:
    """A manifest bfprov did not write holds something, but no pair of bfprov's."""
    desired = load_desired(PROFILE)
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "a-alice.yaml").write_text("kind: ConfigMap\n")
    a, b = observe_publications(desired)["alice"]
    assert (a.held_fingerprint, a.holds_something, a.error) == (None, True, None)
    assert (b.held_fingerprint, b.holds_something, b.error) == (None, False, None)
