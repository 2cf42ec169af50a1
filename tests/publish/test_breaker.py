"""The run's breaker: which endpoint a target talks to, and its budget of two timeouts."""

from __future__ import annotations

import threading
import time

import pytest

from bfprov.desired.targets import AwsSecretsManagerConfig, KubernetesConfig, VaultConfig
from bfprov.publish.base import PublishError
from bfprov.publish.breaker import Breaker, endpoint


def vault(address: str, path: str = "bots/{account}") -> VaultConfig:
    return VaultConfig.model_validate({"address": address, "token": {"env": "T"}, "path": path})


def test_an_endpoint_is_scheme_host_and_port() -> None:
    assert endpoint(vault("https://Vault.Example.com")) == "https://vault.example.com:443"
    assert endpoint(vault("https://vault.example.com:8200/")) == "https://vault.example.com:8200"
    assert endpoint(vault("http://[::1]:8200")) == "http://[::1]:8200"
    aws = AwsSecretsManagerConfig(region="eu-west-1", name="b/{account}")
    assert endpoint(aws) == "https://secretsmanager.eu-west-1.amazonaws.com:443"
    local = AwsSecretsManagerConfig(
        region="eu-west-1", name="b", endpoint_url="http://127.0.0.1:5000"
    )
    assert endpoint(local) == "http://127.0.0.1:5000"
    assert endpoint(KubernetesConfig(dir="k8s", namespace="bots", name="b")) is None


def _timeout(label: str) -> PublishError:
    return PublishError(label, "no answer in time", timed_out=True)


def test_two_timeouts_then_every_call_to_that_endpoint_is_skipped() -> None:
    breaker = Breaker(timeout=1)
    silent, other = vault("http://127.0.0.1:1"), vault("http://127.0.0.1:2")
    calls: list[str] = []

    def times_out() -> None:
        calls.append("silent")
        raise _timeout("silent")

    for _ in range(2):
        with pytest.raises(PublishError, match="no answer in time"):
            breaker.call(silent, "silent", times_out)
    with pytest.raises(PublishError, match=r"^a: skipped: http://127.0.0.1:1 did not answer$"):
        breaker.call(vault("http://127.0.0.1:1", "other/{account}"), "a", times_out)
    assert calls == ["silent", "silent"]  # the third was never made
    assert breaker.call(other, "other", lambda: "answered") == "answered"


def test_errors_that_are_answers_cost_nothing() -> None:
    breaker = Breaker()
    refused = vault("http://127.0.0.1:1")

    def refuses() -> None:
        raise PublishError("r", "refused: permission denied")

    for _ in range(5):
        with pytest.raises(PublishError, match="permission denied"):
            breaker.call(refused, "r", refuses)
    assert breaker.call(refused, "r", lambda: 1) == 1


def test_after_a_timeout_calls_to_that_endpoint_go_one_at_a_time() -> None:
    breaker = Breaker()
    config = vault("http://127.0.0.1:1")

    def times_out() -> None:
        raise _timeout("x")

    with pytest.raises(PublishError):
        breaker.call(config, "x", times_out)
    running, most = 0, 0
    lock = threading.Lock()

    def slow() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    threads = [threading.Thread(target=breaker.call, args=(config, "x", slow)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 1
