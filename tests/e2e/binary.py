"""Running the compiled `ecr-platform-guard` against the emulator, as a CLI or as a Lambda function."""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import os
import subprocess
import tempfile
from typing import Any, NamedTuple

from runtime_api import LambdaRun, run_lambda


def binary_path() -> str | None:
    """EPG_BIN, if it names an executable file."""
    path = os.environ.get("EPG_BIN")
    return path if path and os.path.isfile(path) and os.access(path, os.X_OK) else None


@functools.cache
def _empty_home() -> str:
    """One empty HOME per test process, removed at exit."""
    home = tempfile.mkdtemp(prefix="epg-home-")
    atexit.register(shutil.rmtree, home, True)
    # Empty, not missing: the SDK warns on stderr about an overridden config file that does not
    # exist, and stderr must stay one line on failure.
    for name in ("no-config", "no-credentials"):
        open(os.path.join(home, name), "w").close()
    return home


def aws_env(endpoint: str, **extra: str) -> dict[str, str]:
    """A clean environment for the binary: only the emulator's endpoint and dummy credentials.

    Nothing is inherited from the caller's AWS setup (profiles, real credentials, ~/.aws), so a
    test can never reach real AWS; IMDS is off so the credential chain does not wait on it.
    """
    home = _empty_home()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.path.join(home, "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1,localhost",
        "RUST_BACKTRACE": "1",
    }
    env.update(extra)
    return env


class CliResult(NamedTuple):
    code: int
    stdout: str
    stderr: str

    def report(self) -> dict[str, Any]:
        """stdout parsed as the JSON report (for `--format json`)."""
        try:
            return json.loads(self.stdout)
        except ValueError as e:
            raise AssertionError(f"stdout is not JSON ({e}):\n{self.stdout}\n--- stderr:\n{self.stderr}") from None


def run_cli(binary: str, endpoint: str, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> CliResult:
    """`ecr-platform-guard ARGS...` with the emulator as its AWS; returns (code, stdout, stderr)."""
    full_env = aws_env(endpoint, **(env or {}))
    proc = subprocess.run([binary, *args], env=full_env, capture_output=True, text=True, timeout=timeout)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def run_as_lambda(binary: str, endpoint: str, events: list[Any], env: dict[str, str] | None = None, timeout: float = 30) -> LambdaRun:
    """The binary in Lambda mode, driven through the local Runtime API with these events."""
    return run_lambda(binary, events, aws_env(endpoint, **(env or {})), timeout=timeout)


def consumer(report: dict[str, Any], name: str) -> dict[str, Any]:
    """The one consumer of the report with this name."""
    found = [c for c in report["consumers"] if c["name"] == name]
    assert len(found) == 1, f"{name} not reported once: {report['consumers']}"
    return found[0]
