"""`bfprov upload` end to end: the real command, the embedded emulator, a manifest target,
an on_live hook, and the page driven in headless Chromium (Debian's package).

alice has logged in (not listed); bob has a staged pair (listed, staged); carol is new
and has never logged in (listed, live). Checking bob before his upload fails with
CERT_AUTH_REQUIRED; after it, bob's staged pair is promoted, published and hooked.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bfprov.sandbox import Emulator
from tests.support.fleet import CliFleet

PASSWORD = "Upl0ad-pw-SECRET"
APP_KEY = "Upl0ad-appkey-SECRET"
HOOK = """\
import json, os, sys
with open(sys.argv[1], "a") as fh:
    fh.write(json.dumps({"account": os.environ["BFPROV_ACCOUNT"],
                         "event": os.environ["BFPROV_EVENT"]}) + "\\n")
"""


def profile(root: Path, names: list[str]) -> str:
    hook = json.dumps([sys.executable, str(root / "hook.py"), str(root / "hooks.jsonl")])
    accounts = "".join(
        f"  - name: {n}\n    username: {n}@example.com\n    subject: {{common_name: {n}}}\n"
        for n in names
    )
    return (
        "version: 1\noutput_dir: certs\n"
        "defaults:\n  app_key: {env: BF_APP_KEY}\n  password: {env: BF_PASSWORD}\n"
        "  key: {size: 1024}\n"
        "  publish:\n    - kubernetes: {dir: k8s, namespace: bots, name: 'betfair-{account}'}\n"
        f"  hooks: {{on_live: {hook}}}\n"
        f"accounts:\n{accounts}"
    )


@pytest.fixture
def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[tuple[CliFleet, Emulator]]:
    (tmp_path / "hook.py").write_text(HOOK)
    monkeypatch.setenv("BF_APP_KEY", APP_KEY)
    monkeypatch.setenv("BF_PASSWORD", PASSWORD)
    with Emulator(tmp_path / "sandbox") as emu:
        monkeypatch.setenv("BFPROV_IDENTITY_URL", emu.url)
        monkeypatch.setenv("BFPROV_CA_BUNDLE", str(emu.ca_path))
        for name in ("alice", "bob", "carol"):
            emu.add_account(f"{name}@example.com", PASSWORD, APP_KEY)
        fleet = CliFleet(tmp_path, capsys, profile(tmp_path, ["alice", "bob"]))
        assert fleet.run("apply", "--yes", "--no-verify")[0] == 0
        for name in ("alice", "bob"):
            emu.upload(f"{name}@example.com", crt(fleet, name).read_bytes())
        assert fleet.run("verify")[0] == 0  # both have logged in with their live pair
        assert fleet.run("apply", "--yes", "--no-verify", "--replace", "bob")[0] == 0
        fleet.profile.write_text(profile(tmp_path, ["alice", "bob", "carol"]))
        assert fleet.run("apply", "--yes", "--no-verify")[0] == 0
        yield fleet, emu


def crt(fleet: CliFleet, name: str, *, staged: bool = False) -> Path:
    return fleet.out / name / ("staged" if staged else "") / "client-1024.crt"


class Served:
    """`python -m bfprov upload --no-browser` in its own process, and its address."""

    def __init__(self, fleet: CliFleet) -> None:
        argv = [sys.executable, "-m", "bfprov", "upload", "--no-browser", "--port", "0"]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
        self.process = subprocess.Popen(
            [*argv, "--profiles", str(fleet.profile)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        lines = [self.process.stdout.readline() for _ in range(2)]
        match = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", "".join(lines))
        assert match, lines
        self.base, self.token = match[1], match[2]
        self.url = f"{self.base}/?token={self.token}"

    def stop(self) -> tuple[int, str, str]:
        self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, out, err


def test_an_upload_day_in_the_browser(world: tuple[CliFleet, Emulator], browser: Any) -> None:
    fleet, emu = world
    served = Served(fleet)
    bodies: list[bytes] = []
    try:
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        page.on("response", lambda r: bodies.append(_body(r)))
        page.goto(served.url)

        # The listing: the staged pair and the new account's pair, not the live one.
        entries = page.locator("li.entry")
        assert sorted(entries.evaluate_all("els => els.map(e => e.dataset.account)")) == [
            "bob",
            "carol",
        ]
        bob = page.locator('li[data-account="bob"]')
        assert bob.get_attribute("data-status") == "pending"
        assert "staged pair" in bob.inner_text() and "bob@example.com" in bob.inner_text()
        assert "0 of 2 done" in page.inner_text("#progress")
        link = bob.locator("a.upload-page").get_attribute("href")
        assert link is not None and link.startswith(f"{emu.url}/sandbox/upload-page")

        # The download is the staged .crt, byte for byte.
        with page.expect_download() as download:
            bob.locator("a[download]").click()
        assert (
            Path(download.value.path()).read_bytes() == crt(fleet, "bob", staged=True).read_bytes()
        )

        # Checked before the upload: Betfair does not know the pair yet.
        bob.locator("button.check").click()
        page.wait_for_selector('li[data-account="bob"][data-status="failed"]', timeout=20000)
        assert "CERT_AUTH_REQUIRED" in bob.locator(".status").inner_text()
        live_before = crt(fleet, "bob").read_bytes()
        assert live_before != crt(fleet, "bob", staged=True).read_bytes()

        # Uploaded (here through the emulator), checked again with the keyboard: live.
        staged = crt(fleet, "bob", staged=True).read_bytes()
        emu.upload("bob@example.com", staged)
        bob.locator("button.check").focus()
        page.keyboard.press("Enter")
        page.wait_for_selector('li[data-account="bob"][data-status="live"]', timeout=30000)
        assert "1 of 2 done" in page.inner_text("#progress")
        if shot := os.environ.get("BFPROV_SCREENSHOT"):  # README's picture of the page
            page.set_viewport_size({"width": 900, "height": 760})
            page.screenshot(path=shot, full_page=True)
        context.close()
    finally:
        code, out, err = served.stop()
    assert code == 0, err
    assert "Traceback" not in out + err

    # On disk, at the target, in the hook's log and in the history.
    assert crt(fleet, "bob").read_bytes() == staged
    assert not crt(fleet, "bob", staged=True).exists()
    from ruamel.yaml import YAML

    from bfprov import crypto

    manifest = YAML(typ="safe").load((fleet.root / "k8s" / "betfair-bob.yaml").read_text())
    fingerprint = crypto.inspect_certificate(staged).fingerprint_sha256
    assert manifest["metadata"]["annotations"]["bfprov.io/fingerprint"] == fingerprint
    hooks = [json.loads(line) for line in (fleet.root / "hooks.jsonl").read_text().splitlines()]
    assert {"account": "bob", "event": "promoted"} in hooks
    code, history, _ = fleet.run("history", "bob", "--json")
    assert ("promoted", fingerprint) in {
        (e["event"], e.get("fingerprint")) for e in json.loads(history)
    }

    # No response ever held a secret (and the page, its state and the download were read).
    assert any(b"data-account" in b for b in bodies) and any(b'"entries"' in b for b in bodies)
    key = (fleet.out / "bob" / "client-1024.key").read_text()
    for body in bodies:
        text = body.decode("utf-8", "replace")
        for secret in (PASSWORD, APP_KEY, "PRIVATE KEY", key.splitlines()[1]):
            assert secret not in text


def _body(response: Any) -> bytes:
    """A response's body (a redirect has none to read)."""
    try:
        body: bytes = response.body()
    except Exception:  # the redirect that sets the cookie, or a page already closed
        return b""
    return body


def test_the_page_refuses_requests_without_its_token(world: tuple[CliFleet, Emulator]) -> None:
    fleet, _ = world
    served = Served(fleet)
    try:
        for path in ("/", "/api/state", "/download/bob", "/?token=guess"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{served.base}{path}", timeout=5)  # noqa: S310
            assert refused.value.code == 403
    finally:
        code, _, err = served.stop()
    assert code == 0, err


def test_a_non_loopback_address_is_served_with_a_warning_and_ctrl_c_exits_0(
    world: tuple[CliFleet, Emulator],
) -> None:
    fleet, _ = world
    # Bound for a moment and sent nothing: the warning is what is tested.
    everywhere = "0.0.0.0"  # noqa: S104
    argv = [sys.executable, "-m", "bfprov", "upload", "--no-browser", "--host", everywhere]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    process = subprocess.Popen(
        [*argv, "--profiles", str(fleet.profile)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    assert "2 pair(s) await their upload" in process.stdout.readline()
    assert re.search(r"http://0\.0\.0\.0:\d+/\?token=", process.stdout.readline())
    process.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "warning: --host 0.0.0.0 is not a loopback address" in err
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "--port: 70000 is not a port number"),
        # TEST-NET-1: no interface here has it, so binding fails (nothing is sent).
        (["--host", "192.0.2.1"], "cannot serve on 192.0.2.1:0"),
    ],
)
def test_a_bad_address_is_one_line_and_exit_1(
    args: list[str], message: str, world: tuple[CliFleet, Emulator]
) -> None:
    fleet, _ = world
    code, out, err = fleet.run("upload", "--no-browser", *args)
    assert code == 1 and message in err and "Traceback" not in out + err
