"""A minimal Lambda Runtime API, so the compiled binary can run in Lambda mode on this machine.

The binary (lambda_runtime 1.5) needs, at start: AWS_LAMBDA_RUNTIME_API (host:port, no scheme),
AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_MEMORY_SIZE (an i32), AWS_LAMBDA_FUNCTION_VERSION;
AWS_LAMBDA_LOG_STREAM_NAME and AWS_LAMBDA_LOG_GROUP_NAME are optional (it panics on the first three).
Per invocation it requires the Lambda-Runtime-Aws-Request-Id and Lambda-Runtime-Deadline-Ms headers.

Endpoints (the 2018-06-01 API as Lambda serves it):
  GET  /2018-06-01/runtime/invocation/next            long-polls until an event is queued
  POST /2018-06-01/runtime/invocation/<id>/response   the handler's result
  POST /2018-06-01/runtime/invocation/<id>/error      the handler's error (errorType, errorMessage)
  POST /2018-06-01/runtime/init/error                 the runtime failed to start
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
FUNCTION_NAME = "ecr-platform-guard"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION_NAME}"


@dataclass
class Invocation:
    request_id: str
    event: Any
    response: Any = None  # parsed JSON when the handler succeeded
    error: dict[str, Any] | None = None  # {"errorType", "errorMessage"} and the error-type header
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def ok(self) -> bool:
        return self.done.is_set() and self.error is None


class RuntimeApi:
    def __init__(self, deadline_ms: int = 30_000):
        self.deadline_ms = deadline_ms
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.invocations: dict[str, Invocation] = {}
        self.init_error: dict[str, Any] | None = None
        self.polls = 0  # how many times the runtime asked for the next event
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # the runtime client keeps its connection open
            # Headers and body go out as two writes; without this the body waits ~40 ms for the
            # client's delayed ACK on every event after the first.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404, {"errorMessage": "not found"})
                api.polls += 1
                inv = api.pending.get()  # blocks like Lambda's long poll
                body = json.dumps(inv.event).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Lambda-Runtime-Aws-Request-Id", inv.request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + api.deadline_ms))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)
                self.send_header("Lambda-Runtime-Trace-Id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0")
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self._body()
                parts = self.path[len(PREFIX) :].strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_error = {**_json_or_text(body), "type": self.headers.get("Lambda-Runtime-Function-Error-Type")}
                    return self._reply(202, {"status": "OK"})
                if len(parts) == 3 and parts[0] == "invocation" and parts[1] in api.invocations:
                    inv = api.invocations[parts[1]]
                    if parts[2] == "response":
                        inv.response = _json_value(body)
                    elif parts[2] == "error":
                        inv.error = {**_json_or_text(body), "type": self.headers.get("Lambda-Runtime-Function-Error-Type")}
                    else:
                        return self._reply(404, {"errorMessage": "not found"})
                    inv.done.set()
                    return self._reply(202, {"status": "OK"})
                self._reply(400, {"errorMessage": f"unknown invocation or path {self.path}"})

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                                pass
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _reply(self, status: int, doc: Any) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, name="runtime-api", daemon=True).start()

    def invoke(self, event: Any) -> Invocation:
        inv = Invocation(str(uuid.uuid4()), event)
        self.invocations[inv.request_id] = inv
        self.pending.put(inv)
        return inv

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class LambdaRun:
    invocations: list[Invocation]
    init_error: dict[str, Any] | None
    exit_code: int | None  # None = still running when killed (the normal case)
    stdout: str
    stderr: str


def run_lambda(binary: str, events: list[Any], env: dict[str, str], timeout: float = 30.0) -> LambdaRun:
    """Start the binary against a fresh Runtime API, feed it the events one at a time (as Lambda
    does), wait for each result, then kill it. A process that dies or reports an init error stops
    the run early; the invocations it never answered stay `done` unset."""
    api = RuntimeApi()
    full_env = {
        **env,
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2025/01/01/[$LATEST]0123456789abcdef",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION_NAME}",
        "_HANDLER": "bootstrap",
        "LAMBDA_TASK_ROOT": "/var/task",
    }
    # Files, not pipes: a chatty runtime would block on a full pipe that nobody reads until the end.
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    proc = subprocess.Popen([binary], env=full_env, stdout=out, stderr=err, text=True)
    invocations = []
    try:
        for event in events:
            inv = api.invoke(event)
            invocations.append(inv)
            deadline = time.monotonic() + timeout
            while not inv.done.wait(0.05):
                if proc.poll() is not None or api.init_error or time.monotonic() > deadline:
                    break
            if not inv.done.is_set():
                break
        # Like Lambda, an invocation is over when the runtime is back at /next: wait for that, so
        # whatever it logs after answering is captured before the kill.
        deadline = time.monotonic() + 5
        while api.polls <= len(invocations) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        exit_code = proc.poll()
        if exit_code is None:
            proc.kill()
        proc.wait(timeout=10)
        api.stop()
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
        out.close(), err.close()
    return LambdaRun(invocations, api.init_error, exit_code, stdout, stderr)


def _json_value(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def _json_or_text(body: bytes) -> Any:
    try:
        doc = json.loads(body)
    except ValueError:
        return {"raw": body.decode("utf-8", "replace")}
    return doc if isinstance(doc, dict) else {"value": doc}


if __name__ == "__main__":  # a manual check: python runtime_api.py BINARY EVENT_FILE
    import sys

    run = run_lambda(sys.argv[1], [json.load(open(sys.argv[2]))], dict(os.environ))
    print(json.dumps([{"response": i.response, "error": i.error} for i in run.invocations], indent=2))
    print(run.stderr, file=sys.stderr)
