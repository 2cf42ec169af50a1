"""The monitoring kit (examples/monitoring) against metrics bfprov really produced.

`promtool` (Debian's `prometheus` package) checks the alert rules, fires them in
`promtool test rules` on the samples of `bfprov status --prometheus`, and lints the
metrics with `promtool check metrics`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from bfprov.cli import main

KIT = Path(__file__).resolve().parents[2] / "examples" / "monitoring"
RULES = KIT / "bfprov-alerts.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian: prometheus)")

PROFILE = """\
version: 1
output_dir: certs
defaults:
  app_key: {env: BF_APP_KEY}
  outputs: [key, crt]
  validity: {days: 10, renew_before: 2d}
accounts:
  - name: alice
    username: alice
    password: {env: BF_PASSWORD}
    subject: {common_name: alice}
  - name: bob
    username: bob
    password: {env: BF_PASSWORD}
    jurisdiction: it
    subject: {common_name: bob}
"""


@pytest.fixture
def metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[str, float]:
    """`status --prometheus` of a fleet whose certificates expire within 14 days, and
    where bob's rotation is staged, waiting for its upload; and when it was taken."""
    monkeypatch.setenv("BF_APP_KEY", "k")
    monkeypatch.setenv("BF_PASSWORD", "p")
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    apply = ["apply", "--yes", "--no-verify", "--profiles", str(profile)]
    assert main(apply) == 0
    profile.write_text(PROFILE.replace("common_name: bob", "common_name: bob two"))
    assert main(apply) == 0
    capsys.readouterr()
    taken = time.time()
    assert main(["status", "--prometheus", "--profiles", str(profile)]) == 0
    return capsys.readouterr().out, taken


def _promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], input=stdin, capture_output=True, text=True)


@needs_promtool
def test_the_alert_rules_are_valid() -> None:
    done = _promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 8 rules found" in done.stdout


@needs_promtool
def test_the_metrics_pass_promtool_lint(metrics: tuple[str, float]) -> None:
    done = _promtool("check", "metrics", stdin=metrics[0])
    assert done.returncode == 0, done.stdout + done.stderr


def _series(text: str, taken: float) -> list[dict[str, str]]:
    """Each sample as a promtool input series, one value a minute for the test's 5 days
    (further apart, a series would go stale between samples: PromQL looks back 5 minutes).

    promtool's clock starts at 0: times (the *_timestamp_seconds and *_since_seconds
    gauges) are moved by the moment the metrics were taken, so 0 is "then".
    """
    series = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            value = sample.value
            if sample.name.endswith(("_timestamp_seconds", "_since_seconds")):
                value -= taken
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            series.append({"series": f"{sample.name}{{{labels}}}", "values": f"{value}+0x7200"})
    return series


def _rule(name: str) -> dict[str, Any]:
    rules: dict[str, Any] = YAML(typ="safe").load(RULES.read_text())
    return next(r for r in rules["groups"][0]["rules"] if r.get("alert") == name)


def _alerts(name: str, at: str, *labels: dict[str, str]) -> dict[str, object]:
    """An alert test: `name` fires at `at` for exactly these label sets.

    Its annotations are the rule's, with `{{ $labels.x }}` filled in as Prometheus would.
    """
    annotations = _rule(name).get("annotations", {})
    expected = []
    for x in labels:
        filled = {}
        for key, text in annotations.items():
            for label, value in x.items():
                text = text.replace("{{ $labels." + label + " }}", value)
            filled[key] = text
        expected.append({"exp_labels": x, "exp_annotations": filled})
    return {"eval_time": at, "alertname": name, "exp_alerts": expected}


@needs_promtool
def test_the_alerts_fire_on_metrics_bfprov_produced(
    metrics: tuple[str, float], tmp_path: Path
) -> None:
    text, taken = metrics
    alice = {"account": "alice", "jurisdiction": "com"}
    bob = {"account": "bob", "jurisdiction": "it"}
    warning = {"severity": "warning"}
    test = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": _series(text, taken),
            "alert_rule_test": [
                _alerts("BfprovCertificateExpiringSoon", "30m", alice | warning, bob | warning),
                _alerts("BfprovUploadPending", "2d"),  # not yet 3 days
                _alerts("BfprovUploadPending", "4d", bob | warning),
                _alerts("BfprovCertificateExpired", "4d"),
                _alerts("BfprovPublicationFailing", "4d"),
                _alerts("BfprovLoginCheckFailed", "4d"),
            ],
        }],
    }  # fmt: skip
    path = tmp_path / "bfprov-alerts.test.yml"
    with path.open("w") as fh:
        YAML().dump(json.loads(json.dumps(test)), fh)
    done = _promtool("test", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_dashboard_queries_only_metrics_bfprov_exports(metrics: tuple[str, float]) -> None:
    exported = {f.name for f in text_string_to_metric_families(metrics[0])}
    dashboard = json.loads((KIT / "bfprov-dashboard.json").read_text())
    used = {
        word
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for word in target["expr"].replace("(", " ").replace(")", " ").split()
        if word.startswith("bfprov_")
    }
    assert used and used <= exported, used - exported
