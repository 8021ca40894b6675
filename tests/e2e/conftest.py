"""Fixtures for the end-to-end tests.

One emulator (moto + stand-in, see emulator.py) per session on a free loopback port; every test
starts from a fresh account (moto's reset, which also clears the stand-in's blobs, App Runner
services, faults, latency and call counts).

    emulator   the running Emulator (url, seed_blob, add_fault, set_latency, get_calls, requests...)
    aws        boto3 clients on the emulator: aws.ecr, aws.ecs, aws.sns, aws.sqs, aws.lambda_ ...
    seed       Seeder: push_image, cluster, container_instance, task_definition, ecs_service,
               apprunner_service, lambda_function, alert_topic, received ...
    epg_bin    path of the compiled binary (EPG_BIN); tests that use it are skipped without it
    run_cli    run_cli(*args, env={...}) -> CliResult(code, stdout, stderr) with .report()
    event_file event_file(event_dict) -> path of a JSON file for `check --event`
    run_lambda run_lambda(events, env={...}) -> LambdaRun (binary in Lambda mode)
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Iterator

import pytest

from binary import CliResult, binary_path, run_as_lambda
from binary import run_cli as _run_cli
from emulator import Emulator
from runtime_api import LambdaRun
from seed import Clients, Seeder


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    emu = Emulator().start()
    yield emu
    emu.stop()


@pytest.fixture(autouse=True)
def _fresh_account(emulator: Emulator) -> None:
    emulator.reset()


@pytest.fixture(scope="session")
def aws(emulator: Emulator) -> Clients:
    return Clients(emulator.url)


@pytest.fixture
def seed(emulator: Emulator, aws: Clients) -> Seeder:
    return Seeder(emulator, aws)


@pytest.fixture(scope="session")
def epg_bin() -> str:
    path = binary_path()
    if path is None:
        pytest.skip("EPG_BIN is not set to the compiled ecr-platform-guard binary (e.g. EPG_BIN=target/release/ecr-platform-guard)")
    return path


@pytest.fixture
def run_cli(epg_bin: str, emulator: Emulator) -> Callable[..., CliResult]:
    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> CliResult:
        return _run_cli(epg_bin, emulator.url, *args, env=env, timeout=timeout)

    return run


@pytest.fixture
def event_file(tmp_path: Any) -> Callable[[dict[str, Any]], str]:
    counter = iter(range(1_000_000))

    def write(event: dict[str, Any]) -> str:
        path = tmp_path / f"event-{next(counter)}.json"
        path.write_text(json.dumps(event, indent=2))
        return str(path)

    return write


@pytest.fixture
def run_lambda(epg_bin: str, emulator: Emulator) -> Callable[..., LambdaRun]:
    def run(events: list[Any], env: dict[str, str] | None = None, timeout: float = 30) -> LambdaRun:
        return run_as_lambda(epg_bin, emulator.url, events, env=env, timeout=timeout)

    return run


# ------------------------------------------------------------------ running `check` on one event
CONSUMER_KEYS = {"kind", "name", "arn", "cluster", "relation", "requires", "source", "verdict", "reason"}
REPORT_KEYS = {"verdict", "image", "consumers", "actions", "reason"}


@pytest.fixture
def alerts(seed) -> tuple[str, str]:
    """(topic_arn, queue_url): an alert topic with an SQS queue subscribed."""
    return seed.alert_topic()


@pytest.fixture
def env(alerts) -> dict[str, str]:
    return {"ALERT_TOPIC_ARN": alerts[0], "ACTIONS": "alert,tag"}


@pytest.fixture
def run(run_cli, event_file, env):
    """run(event, *args, env_over=...) -> CliResult, for any exit status."""

    def go(ev: dict[str, Any], *extra: str, env_over: dict[str, str] | None = None, timeout: float = 60):
        return run_cli("check", "--event", event_file(ev), "--format", "json", *extra, env={**env, **(env_over or {})}, timeout=timeout)

    return go


@pytest.fixture
def check(run, emulator):
    """check(event, ...) -> (CliResult, report): exit 0/1 matching the verdict, report well-formed,
    no pre-signed URL in the output."""

    def go(ev: dict[str, Any], *extra: str, env_over: dict[str, str] | None = None) -> tuple[Any, dict[str, Any]]:
        result = run(ev, *extra, env_over=env_over)
        assert result.code in (0, 1), f"exit {result.code}\n{result.stderr}"
        report = result.report()
        assert REPORT_KEYS <= report.keys()
        for c in report["consumers"]:
            assert CONSUMER_KEYS <= c.keys(), c
        assert result.code == (1 if report["verdict"] == "incompatible" else 0)
        assert emulator.url_secret not in result.stdout + result.stderr
        return result, report

    return go
