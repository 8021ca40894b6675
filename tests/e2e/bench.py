"""Benchmark: the compiled binary in Lambda mode against an emulated account at scale.

    EPG_BIN=target/release/ecr-platform-guard .venv/bin/python tests/e2e/bench.py [--json PATH]

(`make bench` builds the release binary and runs this.) docs/BENCHMARKS.md explains the figures.

What it does, all on loopback, bounded in time (--time-limit, default 540 s), and stopping by itself:

1. starts the emulator (moto + stand-in, emulator.py) and seeds one account: 50 clusters x 40
   services = 2,000 ECS services sharing 400 task definitions (mostly Fargate; 5 clusters run EC2
   container instances and EC2 services), 20 App Runner services, 50 Lambda image functions and a
   few zip ones, an SNS topic with an SQS subscriber. Repository `shop/web` is used by exactly 3 of
   the services (2 Fargate, 1 EC2 whose architecture comes from its cluster's instances); an arm64
   image is pushed to shop/web:latest.
2. runs the binary in Lambda mode through the Runtime API emulator (runtime_api.py), one process
   per execution environment, and measures wall time (event handed out on /next -> response
   posted), AWS calls by operation (counted by the stand-in at the HTTP layer), the binary's CPU
   time, the time from process start to the first /next poll, and peak resident memory (VmHWM)
   just before stopping the process:
   - one environment: cold push, two warm pushes (a fresh image on shop/web:latest each time, so
     the tag and alert actions run again), then the marker-tag push event (skipped);
   - cold pushes in fresh processes, MAX_CONCURRENCY=8 (default) against MAX_CONCURRENCY=1 with
     CONSUMER_CACHE_TTL_SECONDS=0, with --latency-ms injected per AWS call and with none: once
     against live moto, then --repeat times with moto's read-only answers replayed (MotoReplay).
3. prints a table of figures with their targets (PASS/MISS; it never fails on a timing) and, with
   --json PATH, writes the same as JSON.

What the bench adds around the emulator, without changing it (each explained where it is defined):
ServerClock (when each request was being served, and what it was), MotoReplay, TimedHandler,
gc.freeze() after seeding.

Exit status: 0 when every scenario ran (whatever the figures), 1 when one could not run (an
invocation failed, a wrong verdict, the time limit).
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import logging
import math
import os
import platform as host_platform
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from binary import aws_env, binary_path  # noqa: E402
from emulator import Emulator, Request, call_wsgi  # noqa: E402
from runtime_api import FUNCTION_NAME, Invocation, RuntimeApi  # noqa: E402
from seed import Clients, Pushed, Seeder, event_for, image_uri  # noqa: E402

REPO = "shop/web"
TAG = "latest"
DESCRIBE_SERVICES_BATCH = 10  # ECS's limit, and what the binary sends

# Page sizes of the emulator when a request names none (emulator.py); a request's own
# maxResults / MaxResults wins. moto's Lambda ListFunctions ignores MaxItems: one page, always.
STANDIN_DEFAULT_PAGE = {"ecs:ListClusters": 100, "ecs:ListServices": 10, "apprunner:ListServices": 20}


class TimeLimit(Exception):
    pass


# ---------------------------------------------------------------------------------------- emulator
_served = threading.local()  # per server thread: when the current request's headers arrived, its span


class ServerClock:
    """WSGI wrapper around the emulator: which AWS request was being served when, so the binary's
    own time can be told from the emulator's, and the exact requests (method, path, query, body),
    so repeated identical requests can be found. A span runs from the moment the request line has
    been read (so the emulator's own HTTP parsing counts as emulator time; see TimedHandler) to the
    moment the answer has been written."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self.lock = threading.Lock()
        self.spans: list[list[Any]] = []  # [start, end, operation, request key]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        blob = path.startswith("/_standin/blobs/") and environ["REQUEST_METHOD"] == "GET"
        aws = blob or not (path.startswith("/moto-api") or path.startswith("/_standin/"))
        start = getattr(_served, "arrived", None) or time.perf_counter()
        if aws:
            req = Request(environ)  # reads the body and leaves a re-readable copy
            op = "s3:GetObject" if blob else req.name
            key = f"{op} {req.method} {req.path}?{req.query} {req.body.decode('utf-8', 'replace')}"
        result = self.app(environ, start_response)
        try:
            data = [b"".join(result)]
        finally:
            getattr(result, "close", lambda: None)()
        if aws:
            span = [start, time.perf_counter(), op, key]
            _served.span = span  # TimedHandler moves the end to when the answer was written
            with self.lock:
                self.spans.append(span)
        return data

    def window(self, t0: float, t1: float) -> list[tuple[float, float, str, str]]:
        # Requests that arrived inside the window: the binary sends none before it has the event.
        with self.lock:
            return [tuple(s) for s in self.spans if t0 <= s[0] < t1]  # type: ignore[misc]

    @staticmethod
    def handler(base: type) -> type:
        """The emulator's request handler, timed: arrival after the request line, end after the
        answer was written and the connection drained (werkzeug closes every connection after one
        answer: `Connection: close`, whatever the protocol version says)."""

        class TimedHandler(base):  # type: ignore[misc, valid-type]
            def parse_request(self) -> bool:
                _served.arrived = time.perf_counter()
                return super().parse_request()

            def handle_one_request(self) -> None:
                _served.arrived = _served.span = None
                super().handle_one_request()
                span = getattr(_served, "span", None)
                if span is not None:
                    span[1] = time.perf_counter()
                _served.arrived = _served.span = None

        return TimedHandler

    def busy(self, t0: float, t1: float) -> tuple[float, float]:
        """(union of serving intervals within [t0, t1], sum of them) in seconds."""
        spans = sorted((a, min(b, t1)) for a, b, _, _ in self.window(t0, t1))
        union = total = 0.0
        cur_a = cur_b = None
        for a, b in spans:
            total += b - a
            if cur_b is None or a > cur_b:
                if cur_b is not None:
                    union += cur_b - cur_a
                cur_a, cur_b = a, b
            else:
                cur_b = max(cur_b, b)
        if cur_b is not None:
            union += cur_b - cur_a
        return union, total


class MotoReplay:
    """Wraps moto's app inside the stand-in: once enabled, answers to read-only ECS and Lambda
    calls are computed by moto once and replayed from then on. The ECS and Lambda state does not
    change while the bench measures (only ECR images and SNS do, and those stay live), so the
    answers are the same; what goes away is moto's own CPU time, which under Python's GIL is
    served one request at a time and would otherwise cap any concurrency figure. The stand-in
    still counts every call, injects latency, pages and patches answers exactly as before."""

    READ_ONLY = {
        "ecs": {"ListClusters", "ListServices", "DescribeServices", "DescribeTaskDefinition",
                "ListContainerInstances", "DescribeClusters", "ListAttributes"},
        "lambda": {"ListFunctions", "GetFunction"},
    }

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self.enabled = False
        self.lock = threading.Lock()
        self.memo: dict[tuple[str, ...], tuple[str, list[tuple[str, str]], bytes]] = {}
        self.hits = self.misses = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self.enabled:
            return self.app(environ, start_response)
        req = Request(environ)
        if req.operation not in self.READ_ONLY.get(req.service, ()):
            return self.app(environ, start_response)
        key = (req.service, req.method, req.path, req.query, req.target, req.body.decode("utf-8", "replace"))
        with self.lock:
            hit = self.memo.get(key)
        if hit is None:
            hit = call_wsgi(self.app, environ)
            with self.lock:
                self.misses += 1
                if hit[0].startswith("2"):
                    self.memo[key] = hit
        else:
            with self.lock:
                self.hits += 1
        start_response(hit[0], list(hit[1]))
        return [hit[2]]


# ---------------------------------------------------------------------------------- Lambda process
class TimedQueue(queue.Queue):
    """The Runtime API's queue of pending events: records when the runtime first polled /next and
    when each invocation was handed out."""

    def __init__(self) -> None:
        super().__init__()
        self.first_poll: float | None = None
        self.polls = 0

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        now = time.perf_counter()
        with self.mutex:
            self.polls += 1
            if self.first_poll is None:
                self.first_poll = now
        inv = super().get(block, timeout)
        inv.delivered = time.perf_counter()
        return inv


class TimedEvent(threading.Event):
    def __init__(self) -> None:
        super().__init__()
        self.at: float | None = None

    def set(self) -> None:
        self.at = time.perf_counter()
        super().set()


@dataclass
class Measured:
    """One invocation: wall time, calls by operation, and the emulator's share of the time."""

    wall_ms: float
    calls: dict[str, int]
    emulator_ms: float  # union of the time some AWS request of ours was being served
    served_ms: float  # sum of per-request serving time (overlaps counted once per request)
    response: Any
    error: Any
    journal: list[dict[str, Any]] = field(default_factory=list)  # the stand-in's {"op", "body"}
    served: list[tuple[str, str, float]] = field(default_factory=list)  # (operation, request key, ms)
    window: tuple[float, float] = (0.0, 0.0)  # delivered, answered (perf_counter)
    gc_ms: float = 0.0  # the emulator's GC pauses inside the window
    cpu_ms: float | None = None  # CPU time the binary's process used for this invocation

    def summary(self) -> dict[str, Any]:
        return {"wall_ms": round(self.wall_ms, 2), "emulator_ms": round(self.emulator_ms, 2), "own_ms": round(self.own_ms, 2),
                "served_ms_sum": round(self.served_ms, 2), "emulator_gc_ms": round(self.gc_ms, 2),
                "binary_cpu_ms": None if self.cpu_ms is None else round(self.cpu_ms, 2),
                "calls": self.calls, "total_calls": self.total_calls}

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def own_ms(self) -> float:
        """Wall time during which no AWS request was being served: the binary's own work plus
        loopback transport."""
        return max(0.0, self.wall_ms - self.emulator_ms)


class LambdaProcess:
    """The binary as one Lambda execution environment: started once, fed events one at a time."""

    def __init__(self, binary: str, emulator: Emulator, clock: ServerClock, env: dict[str, str]):
        self.emulator, self.clock = emulator, clock
        self.api = RuntimeApi(deadline_ms=300_000)
        self.queue = TimedQueue()
        self.api.pending = self.queue
        full_env = aws_env(emulator.url, **env)
        full_env.update({
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2025/01/01/[$LATEST]0123456789abcdef",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION_NAME}",
            "_HANDLER": "bootstrap",
            "LAMBDA_TASK_ROOT": "/var/task",
        })
        self.out = tempfile.TemporaryFile("w+")
        self.err = tempfile.TemporaryFile("w+")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([binary], env=full_env, stdout=self.out, stderr=self.err, text=True)
        self.answered = 0

    def startup_ms(self, timeout: float = 10) -> float:
        deadline = time.monotonic() + timeout
        while self.queue.first_poll is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the runtime never polled /next (exit {self.proc.poll()}): {self.logs()[-2000:]}")
            time.sleep(0.0005)
        return (self.queue.first_poll - self.started) * 1000

    def invoke(self, event: Any, timeout: float = 240) -> Measured:
        """One event: counters reset first; returns once the runtime is back at /next."""
        self._wait_idle()
        self.emulator.reset_calls()
        cpu0 = self.cpu_ns()
        inv = Invocation(request_id=f"bench-{self.answered + 1:04d}-{os.urandom(4).hex()}", event=event)
        inv.done = TimedEvent()
        self.api.invocations[inv.request_id] = inv
        self.api.pending.put(inv)
        deadline = time.monotonic() + timeout
        while not inv.done.wait(0.05):
            if self.proc.poll() is not None or self.api.init_error or time.monotonic() > deadline:
                raise RuntimeError(f"invocation not answered (exit {self.proc.poll()}, init error {self.api.init_error}): {self.logs()[-2000:]}")
        cpu1 = self.cpu_ns()
        self.answered += 1
        self._wait_idle()
        calls = self.emulator.get_calls()
        journal = self.emulator.requests()
        t0, t1 = inv.delivered, inv.done.at
        union, total = self.clock.busy(t0, t1)
        served = [(op, key, (b - a) * 1000) for a, b, op, key in self.clock.window(t0, t1)]
        m = Measured((t1 - t0) * 1000, calls, union * 1000, total * 1000, inv.response, inv.error, journal, served, (t0, t1))
        if cpu0 is not None and cpu1 is not None:
            m.cpu_ms = (cpu1 - cpu0) / 1e6
        return m

    def cpu_ns(self) -> int | None:
        """CPU time of every thread of the process so far (schedstat: ns on CPU)."""
        total = 0
        try:
            for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
                with open(f"/proc/{self.proc.pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return total

    def _wait_idle(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.queue.polls <= self.answered and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)

    def vm_hwm_kib(self) -> int | None:
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def logs(self) -> str:
        self.out.flush(), self.err.flush()
        self.out.seek(0), self.err.seek(0)
        return self.out.read() + self.err.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.api.stop()
        self.out.close(), self.err.close()


# ------------------------------------------------------------------------------------------ world
@dataclass
class World:
    clusters: list[str]
    services_per_cluster: dict[str, int]
    ec2_clusters: list[str]
    task_definitions: int
    affected: list[dict[str, Any]]  # the services that use shop/web
    apprunner: int
    lambda_image: int
    lambda_zip: int
    topic: str
    queue_url: str
    seconds: dict[str, float]


def seed_world(seed: Seeder, emulator: Emulator, args: argparse.Namespace) -> World:
    aws = seed.aws
    for name in ("ecs", "ec2", "ecr", "sns", "sqs", "iam", "lambda"):  # clients made once, before threads
        aws.client(name)
    pool = ThreadPoolExecutor(args.workers)
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        out = fn()
        seconds[name] = time.perf_counter() - t
        return out

    def parallel(fn: Callable[..., Any], items: Iterable[Any]) -> list[Any]:
        return list(pool.map(fn, items))

    topic, queue_url = timed("sns topic + sqs subscriber", seed.alert_topic)

    n_clusters, per = args.clusters, args.services_per_cluster
    clusters = [f"bench-{i:02d}" for i in range(n_clusters)]
    ec2_clusters = clusters[: args.ec2_clusters]
    timed("ecs clusters", lambda: parallel(seed.cluster, clusters))
    # Two x86-64 container instances per EC2 cluster, registered with ecs.cpu-architecture.
    timed("container instances", lambda: parallel(lambda c: seed.container_instance(c, "x86_64"), [c for c in ec2_clusters for _ in range(2)]))

    # Task definitions: 2 for shop/web (a Fargate one without runtimePlatform = linux/amd64, and an
    # EC2 one without runtimePlatform = the cluster's instances decide), the rest shared by the
    # other services. Every 4th generic one declares runtimePlatform (ARM64 or X86_64).
    n_generic = args.task_definitions - 2

    def register(k: int) -> str:
        if k == 0:
            return seed.task_definition("shop-web", image_uri(REPO, TAG))
        if k == 1:
            return seed.task_definition("shop-web-ec2", image_uri(REPO, TAG), requires=("EC2",))
        g = k - 2
        arch = (None, "ARM64", None, "X86_64")[g % 4]
        sidecars = [image_uri("platform/log-router", "stable")] if g % 5 == 0 else []
        return seed.task_definition(f"app-{g:03d}", image_uri(f"team{g % 25:02d}/app{g:03d}", f"v{g % 7}"),
                                    cpu_architecture=arch, requires=("EC2", "FARGATE"), extra_images=sidecars)

    tds = timed("task definitions", lambda: parallel(register, range(args.task_definitions)))

    # Services. The 3 that use shop/web: two Fargate in plain clusters, one EC2 in an EC2 cluster.
    affected_at = {
        (clusters[7 % n_clusters], 13 % per): (tds[0], "FARGATE"),
        (clusters[31 % n_clusters], 29 % per): (tds[0], "FARGATE"),
        (ec2_clusters[2 % len(ec2_clusters)], 5 % per): (tds[1], "EC2"),
    }
    specs, affected, generic = [], [], 0
    for cluster in clusters:
        for s in range(per):
            name = f"svc-{cluster[-2:]}-{s:02d}"
            if (cluster, s) in affected_at:
                td, launch = affected_at[(cluster, s)]
                affected.append({"cluster": cluster, "name": name, "launch_type": launch})
            else:
                td = tds[2 + generic % n_generic]
                generic += 1
                launch = "EC2" if cluster in ec2_clusters else "FARGATE"
            specs.append((cluster, name, td, launch))
    timed("ecs services", lambda: parallel(lambda spec: seed.ecs_service(*spec[:3], launch_type=spec[3]), specs))

    def apprunner(i: int) -> Any:
        return seed.apprunner_service(f"ar-{i:02d}", image_uri(f"apprunner/site{i:02d}", "latest"), auto_deploy=i % 2 == 0)

    timed("app runner services", lambda: parallel(apprunner, range(args.apprunner)))

    seed.lambda_function("fn-image-00", image_uri("lambda/fn00", "latest"))  # creates the role once
    timed("lambda functions", lambda: parallel(
        lambda i: seed.lambda_function(f"fn-image-{i:02d}", image_uri(f"lambda/fn{i:02d}", "latest"), "arm64" if i % 3 == 0 else "x86_64"),
        range(1, args.lambdas)))
    if args.zip_lambdas:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("index.py", "def handler(event, context):\n    return event\n")
        code = buf.getvalue()
        role = seed._lambda_role
        timed("lambda zip functions", lambda: parallel(
            lambda i: aws.lambda_.create_function(FunctionName=f"fn-zip-{i:02d}", Runtime="python3.12", Role=role,
                                                  Handler="index.handler", Code={"ZipFile": code}),
            range(args.zip_lambdas)))
    pool.shutdown()
    return World(
        clusters=clusters,
        services_per_cluster={c: per for c in clusters},
        ec2_clusters=ec2_clusters,
        task_definitions=len(set(tds)),
        affected=affected,
        apprunner=args.apprunner,
        lambda_image=args.lambdas,
        lambda_zip=args.zip_lambdas,
        topic=topic,
        queue_url=queue_url,
        seconds=seconds,
    )


def push(seed: Seeder) -> Pushed:
    """A fresh arm64 single-manifest image on shop/web:latest (new digest each time)."""
    return seed.push_image(REPO, TAG, platforms=[("linux", "arm64")])


# ------------------------------------------------------------------------------------ call budget
def page_size(journal: list[dict[str, Any]], op: str, key: str) -> int:
    """The page size the emulator used: the request's own maxResults, else the stand-in default."""
    for entry in journal:
        if entry["op"] == op and isinstance(entry["body"], dict) and entry["body"].get(key):
            return int(entry["body"][key])
    return STANDIN_DEFAULT_PAGE[op]


def pages(n: int, size: int) -> int:
    return max(1, math.ceil(n / size))


def call_budget(world: World, journal: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """The formula on the seeded account: (expected calls by operation, page sizes used)."""
    sizes = {
        "ecs:ListClusters": page_size(journal, "ecs:ListClusters", "maxResults"),
        "ecs:ListServices": page_size(journal, "ecs:ListServices", "maxResults"),
        "apprunner:ListServices": page_size(journal, "apprunner:ListServices", "MaxResults"),
    }
    ec2_affected_clusters = {a["cluster"] for a in world.affected if a["launch_type"] == "EC2"}
    expected = {
        "ecs:ListClusters": pages(len(world.clusters), sizes["ecs:ListClusters"]),
        "ecs:ListServices": sum(pages(n, sizes["ecs:ListServices"]) for n in world.services_per_cluster.values()),
        "ecs:DescribeServices": sum(math.ceil(n / DESCRIBE_SERVICES_BATCH) for n in world.services_per_cluster.values()),
        "ecs:DescribeTaskDefinition": world.task_definitions,
        "ecs:ListAttributes": len(ec2_affected_clusters),
        "apprunner:ListServices": pages(world.apprunner, sizes["apprunner:ListServices"]),
        "apprunner:DescribeService": world.apprunner,
        "lambda:ListFunctions": 1,  # moto answers every function in one page (real Lambda: 50 a page)
        "lambda:GetFunction": world.lambda_image,
        "ecr:BatchGetImage": 1,
        "ecr:GetDownloadUrlForLayer": 1,
        "s3:GetObject": 1,
        "ecr:PutImage": 1,
        "sns:Publish": 1,
    }
    return expected, sizes


def duplicates(m: Measured) -> dict[str, int]:
    """Requests sent more than once, identical in method, path, query and body: {request: times}."""
    seen = Counter(key for _, key, _ in m.served)
    return {k[:200]: n for k, n in seen.items() if n > 1}


def serving_by_op(m: Measured) -> dict[str, dict[str, float]]:
    """How long the emulator took to answer each operation (mean and sum, ms)."""
    out: dict[str, list[float]] = {}
    for op, _, ms in m.served:
        out.setdefault(op, []).append(ms)
    return {op: {"n": len(v), "mean_ms": round(sum(v) / len(v), 2), "sum_ms": round(sum(v), 1)} for op, v in sorted(out.items())}


# --------------------------------------------------------------------------------------- reporting
class Table:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, key: str, label: str, value: Any, unit: str = "", target: str = "", ok: bool | None = None, note: str = "") -> None:
        verdict = "" if ok is None else ("PASS" if ok else "MISS")
        self.rows.append({"key": key, "figure": label, "value": value, "unit": unit, "target": target, "result": verdict, "note": note})

    def render(self) -> str:
        def fmt(v: Any, unit: str) -> str:
            if isinstance(v, float):
                return f"{v:,.2f}" if unit in ("x", "MiB") else f"{v:,.1f}"
            if isinstance(v, int):
                return f"{v:,}"
            return str(v)

        cells = [(r["figure"], f'{fmt(r["value"], r["unit"])} {r["unit"]}'.strip(), r["target"], r["result"]) for r in self.rows]
        widths = [max(len(c[i]) for c in cells + [("figure", "value", "target", "")]) for i in range(4)]
        line = "  ".join("-" * w for w in widths)
        out = [
            "  ".join(h.ljust(w) for h, w in zip(("figure", "value", "target", ""), widths)).rstrip(),
            line,
        ]
        for c, r in zip(cells, self.rows):
            out.append("  ".join([c[0].ljust(widths[0]), c[1].rjust(widths[1]), c[2].ljust(widths[2]), c[3]]).rstrip())
        return "\n".join(out)


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count() or 0
    mem_kib = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kib = int(next(line.split()[1] for line in f if line.startswith("MemTotal:")))
    except (OSError, StopIteration):
        pass
    return {
        "nproc": nproc,
        "cpu": model or host_platform.processor() or host_platform.machine(),
        "arch": host_platform.machine(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": host_platform.release(),
        "python": host_platform.python_version(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def binary_facts(path: str) -> dict[str, Any]:
    facts: dict[str, Any] = {"path": path, "bytes": os.path.getsize(path),
                             "built": datetime.fromtimestamp(os.path.getmtime(path), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    try:
        facts["file"] = subprocess.run(["file", "-b", path], capture_output=True, text=True, timeout=10).stdout.strip()
        facts["stripped"] = "not stripped" not in facts["file"] and "stripped" in facts["file"]
    except (OSError, subprocess.SubprocessError):
        facts["stripped"] = None
    try:
        root = os.path.dirname(os.path.dirname(HERE))
        rev = subprocess.run(["git", "-C", root, "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10).stdout.strip()
        facts["git"] = rev or None
    except (OSError, subprocess.SubprocessError):
        facts["git"] = None
    return facts


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


class GcClock:
    """Pauses of this Python process's cyclic garbage collector: the emulator runs here, so a
    full collection over the seeded account stalls every request being served."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.spans.append((self._start, time.perf_counter()))

    def paused(self, m: "Measured") -> float:
        t0, t1 = m.window
        return sum(min(b, t1) - max(a, t0) for a, b in list(self.spans) if b > t0 and a < t1) * 1000

    def stop(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)


# ------------------------------------------------------------------------------------------- main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument("--bin", default=None, help="the binary (default: $EPG_BIN)")
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--services-per-cluster", type=int, default=40)
    parser.add_argument("--ec2-clusters", type=int, default=5, help="clusters with x86-64 container instances and EC2 services")
    parser.add_argument("--task-definitions", type=int, default=400)
    parser.add_argument("--apprunner", type=int, default=20)
    parser.add_argument("--lambdas", type=int, default=50, help="Lambda functions of package type Image")
    parser.add_argument("--zip-lambdas", type=int, default=5)
    parser.add_argument("--latency-ms", type=int, default=20, help="injected per AWS call in the concurrency runs")
    parser.add_argument("--repeat", type=int, default=3, help="cold runs per concurrency set-up (interleaved; the median is reported)")
    parser.add_argument("--startups", type=int, default=7, help="extra process starts for the start-up figure")
    parser.add_argument("--workers", type=int, default=8, help="seeding threads")
    parser.add_argument("--live-moto", action="store_true", help="no replay of moto's read-only answers in the repeated cold runs")
    parser.add_argument("--no-gc-freeze", action="store_true", help="leave the emulator's seeded heap to Python's GC (see docs)")
    parser.add_argument("--time-limit", type=int, default=540, help="seconds; the run stops itself after this")
    args = parser.parse_args()
    if args.clusters < 32 or args.ec2_clusters < 3 or args.services_per_cluster < 30 or args.task_definitions < 3 or args.repeat < 1:
        parser.error("the world needs at least 32 clusters, 3 EC2 clusters, 30 services a cluster, 3 task definitions; --repeat >= 1")

    binary = args.bin or binary_path()
    if not binary:
        print("bench: set EPG_BIN (or --bin) to the compiled ecr-platform-guard binary", file=sys.stderr)
        return 2

    def on_alarm(_signum: int, _frame: Any) -> None:
        raise TimeLimit(f"time limit of {args.time_limit} s reached")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.time_limit)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    run_started = time.perf_counter()
    load_before = loadavg()

    emulator = Emulator()
    clock = ServerClock(emulator._server.app)
    emulator._server.app = clock  # time every request the server answers (see ServerClock)
    emulator._server.RequestHandlerClass = ServerClock.handler(emulator._server.RequestHandlerClass)
    replay = MotoReplay(emulator.standin.moto_app)
    emulator.standin.moto_app = replay  # off until enabled (see MotoReplay)
    emulator.start()
    gc_clock = GcClock()
    processes: list[LambdaProcess] = []
    problems: list[str] = []
    table = Table()
    results: dict[str, Any] = {"machine": machine(), "binary": binary_facts(binary)}

    def start(env: dict[str, str]) -> LambdaProcess:
        proc = LambdaProcess(binary, emulator, clock, env)
        processes.append(proc)
        return proc

    def finish(proc: LambdaProcess) -> int | None:
        hwm = proc.vm_hwm_kib()
        logs = proc.logs()
        proc.stop()
        processes.remove(proc)
        if "panicked" in logs:
            problems.append(f"the binary panicked: {logs[-1500:]}")
        return hwm

    def check(name: str, m: Measured, verdict: str = "incompatible") -> None:
        got = (m.response or {}).get("verdict") if isinstance(m.response, dict) else None
        if m.error or got != verdict:
            problems.append(f"{name}: expected verdict {verdict}, got {got!r} / error {m.error}")

    try:
        aws = Clients(emulator.url)
        seed = Seeder(emulator, aws)
        t = time.perf_counter()
        world = seed_world(seed, emulator, args)
        pushed = push(seed)
        seed_seconds = time.perf_counter() - t
        # The emulator's heap now holds the whole account; keep Python's cyclic GC from rescanning
        # it on every full collection while we measure (a pause there stalls every request).
        if not args.no_gc_freeze:
            gc.collect()
            gc.freeze()
        n_services = sum(world.services_per_cluster.values())
        print(f"seeded {len(world.clusters)} clusters, {n_services} ECS services ({len(world.ec2_clusters)} EC2 clusters, "
              f"{len(world.ec2_clusters) * args.services_per_cluster} EC2 services), {world.task_definitions} task definitions, "
              f"{world.apprunner} App Runner services, {world.lambda_image} Lambda image + {world.lambda_zip} zip functions "
              f"in {seed_seconds:.1f} s ({args.workers} threads)")
        print("  " + ", ".join(f"{k} {v:.1f} s" for k, v in world.seconds.items()))
        print(f"  {REPO} is used by: " + ", ".join(f'{a["cluster"]}/{a["name"]} ({a["launch_type"]})' for a in world.affected))
        results["world"] = {
            "clusters": len(world.clusters), "ecs_services": n_services, "ec2_clusters": len(world.ec2_clusters),
            "task_definitions": world.task_definitions, "apprunner_services": world.apprunner,
            "lambda_image_functions": world.lambda_image, "lambda_zip_functions": world.lambda_zip,
            "affected": world.affected, "seed_seconds": round(seed_seconds, 1),
            "seed_phases": {k: round(v, 2) for k, v in world.seconds.items()},
        }
        env = {"ALERT_TOPIC_ARN": world.topic, "ACTIONS": "alert,tag"}
        emulator.set_latency(0)

        # -------- 1. start-up: process start -> first /next poll, in processes given no event
        startups = []
        for _ in range(args.startups):
            p = start(env)
            startups.append(p.startup_ms())
            finish(p)

        # -------- 2. one execution environment: cold, warm, warm, marker-tag skip (0 ms latency)
        proc = start(env)
        startups.append(proc.startup_ms())
        cold = proc.invoke(event_for(pushed))
        cold.gc_ms = gc_clock.paused(cold)
        check("cold", cold)
        affected_names = sorted(c["name"] for c in (cold.response or {}).get("consumers", []) if c.get("relation") == "affected")
        if affected_names != sorted(a["name"] for a in world.affected):
            problems.append(f"cold: affected consumers {affected_names}, expected {sorted(a['name'] for a in world.affected)}")
        warms = []
        for _ in range(2):
            again = push(seed)  # a new digest on the same tag: a second real push, actions included
            warm = proc.invoke(event_for(again))
            check("warm", warm)
            warms.append(warm)
        marker = proc.invoke(event_for(pushed, tag="incompatible-latest"))
        check("marker-tag event", marker, "skipped")
        hwm = finish(proc)
        alerts = len(seed.received(world.queue_url, wait_seconds=1))

        # -------- 3. cold validation, 8-wide (defaults) vs 1-wide without cache, each in a fresh
        # process. First once against live moto at the injected latency; then with moto's read-only
        # answers replayed (MotoReplay), at that latency and at 0 ms, --repeat times, interleaved so
        # a change in machine load hits both alike.
        serial = {"MAX_CONCURRENCY": "1", "CONSUMER_CACHE_TTL_SECONDS": "0"}

        def cold_run(name: str, latency: int, extra: dict[str, str]) -> Measured:
            emulator.set_latency(latency)
            p = start({**env, **extra})
            startups.append(p.startup_ms())
            m = p.invoke(event_for(push(seed)))
            emulator.set_latency(0)
            m.gc_ms = gc_clock.paused(m)
            check(name, m)
            finish(p)
            return m

        live8 = cold_run("live 8-wide", args.latency_ms, {})
        live1 = cold_run("live 1-wide", args.latency_ms, serial)
        replay.enabled = not args.live_moto
        cold_run("priming the replay", 0, {})  # fills the replay memo; not reported
        setups = {"lat8": (args.latency_ms, {}), "lat1": (args.latency_ms, serial), "zero8": (0, {}), "zero1": (0, serial)}
        runs: dict[str, list[Measured]] = {k: [] for k in setups}
        for r in range(args.repeat):
            for key, (latency, extra) in setups.items():
                runs[key].append(cold_run(f"{key} run {r + 1}", latency, extra))
        replay.enabled = False
        median = {k: sorted(v, key=lambda m: m.wall_ms)[len(v) // 2] for k, v in runs.items()}
        lat8, lat1, zero8, zero1 = median["lat8"], median["lat1"], median["zero8"], median["zero1"]
        replayed = "moto replayed" if not args.live_moto else "live moto"

        # -------- figures
        expected, sizes = call_budget(world, cold.journal)
        expected_total = sum(expected.values())
        dups = duplicates(cold)
        size = results["binary"]["bytes"]
        start_med = statistics.median(startups[: args.startups] or startups)
        cpu = lambda m: "?" if m.cpu_ms is None else round(m.cpu_ms, 1)  # noqa: E731
        spread = lambda k: "runs: " + ", ".join(f"{m.wall_ms:,.0f}" for m in runs[k]) + " ms"  # noqa: E731

        table.add("startup_ms", f"start-up: process start -> first /next (median of {len(startups[: args.startups] or startups)})",
                  round(start_med, 1), "ms", "< 50 ms", start_med < 50,
                  note="every start: " + ", ".join(f"{s:.1f}" for s in startups) + " ms")
        table.add("startup_max_ms", f"  slowest of all {len(startups)} starts", round(max(startups), 1), "ms")
        table.add("cold_ms", "cold push validation, live moto, 0 ms latency, wall", cold.wall_ms, "ms")
        table.add("cold_emulator_ms", "  of which an AWS request was being served", cold.emulator_ms, "ms")
        table.add("cold_own_ms", "  of which no request outstanding", cold.own_ms, "ms")
        table.add("cold_cpu_ms", "  CPU time of the binary (all threads)", cpu(cold), "ms")
        table.add("cold_cpu_per_call_ms", "  binary CPU per AWS call", round(cold.cpu_ms / cold.total_calls, 2) if cold.cpu_ms and cold.total_calls else "?", "ms",
                  note="each call opens a new TCP connection: werkzeug closes every connection after one answer")
        for i, w in enumerate(warms, 2):
            table.add(f"warm{i}_ms", f"warm push validation #{i}, live moto, wall", w.wall_ms, "ms",
                      note=f"binary CPU {cpu(w)} ms, emulator {w.emulator_ms:.1f} ms")
        table.add("cold_calls", "AWS calls, cold", cold.total_calls, "", f"= budget {expected_total}", cold.total_calls == expected_total)
        all_cold = [cold, live8, live1, *[m for v in runs.values() for m in v]]
        off = [m.total_calls for m in all_cold if m.total_calls != expected_total]
        table.add("cold_runs_on_budget", "cold runs whose call count equals the budget", len(all_cold) - len(off), "",
                  f"all {len(all_cold)}", not off, note=f"off-budget counts: {off}" if off else "")
        table.add("duplicate_calls", "identical requests repeated, cold", sum(n - 1 for n in dups.values()), "", "0", not dups)
        for i, w in enumerate(warms, 2):
            table.add(f"warm{i}_calls", f"AWS calls, warm #{i} (cache hit)", w.total_calls, "", "<= 5", w.total_calls <= 5)
        table.add("marker_skip_calls", "AWS calls, marker-tag event (skipped)", marker.total_calls, "", "0", marker.total_calls == 0)
        table.add("marker_skip_ms", "marker-tag event, wall", marker.wall_ms, "ms")
        table.add("vmhwm_mib", "peak RSS (VmHWM) after cold + 2 warm + skip", round((hwm or 0) / 1024, 1), "MiB", "< 64 MiB",
                  hwm is not None and hwm < 64 * 1024)
        lat = args.latency_ms
        speed_live = live1.wall_ms / live8.wall_ms if live8.wall_ms else 0
        floor = max(0.0, live1.served_ms - live1.total_calls * lat)
        table.add("live_lat8_ms", f"cold, {lat} ms/call, live moto, MAX_CONCURRENCY=8", live8.wall_ms, "ms")
        table.add("live_lat1_ms", f"cold, {lat} ms/call, live moto, MAX_CONCURRENCY=1, cache off", live1.wall_ms, "ms")
        table.add("live_speedup", "  speed-up, live moto (1-wide / 8-wide)", round(speed_live, 2), "x", ">= 5x", speed_live >= 5)
        table.add("live_inflight", "  8-wide: mean AWS requests in flight", round(live8.served_ms / live8.wall_ms, 1) if live8.wall_ms else 0, "")
        table.add("live_own_ms", "  8-wide: time with no request outstanding", live8.own_ms, "ms")
        table.add("emulator_floor_ms", "  moto's serving time alone, 1-wide, minus injected latency", floor, "ms",
                  note="moto serves one request at a time (Python GIL); no 8-wide run against it can be faster")
        speed_l = lat1.wall_ms / lat8.wall_ms if lat8.wall_ms else 0
        table.add("lat_conc8_ms", f"cold, {lat} ms/call, {replayed}, MAX_CONCURRENCY=8 (median)", lat8.wall_ms, "ms", note=spread("lat8"))
        table.add("lat_conc1_ms", f"cold, {lat} ms/call, {replayed}, MAX_CONCURRENCY=1, cache off (median)", lat1.wall_ms, "ms", note=spread("lat1"))
        table.add("lat_speedup", f"  speed-up, {replayed} (1-wide / 8-wide)", round(speed_l, 2), "x", ">= 5x", speed_l >= 5)
        table.add("lat_inflight", "  8-wide: mean AWS requests in flight", round(lat8.served_ms / lat8.wall_ms, 1) if lat8.wall_ms else 0, "")
        table.add("lat_conc8_own_ms", "  8-wide: time with no request outstanding", lat8.own_ms, "ms")
        table.add("lat_conc8_cpu_ms", "  8-wide: CPU time of the binary", cpu(lat8), "ms")
        table.add("lat_ideal_ms", f"  8-wide lower bound: calls x {lat} ms / 8", round(lat8.total_calls * lat / 8, 1), "ms")
        speed_z = zero1.wall_ms / zero8.wall_ms if zero8.wall_ms else 0
        table.add("zero_conc8_ms", f"cold, 0 ms/call, {replayed}, MAX_CONCURRENCY=8 (median)", zero8.wall_ms, "ms", note=spread("zero8"))
        table.add("zero_conc1_ms", f"cold, 0 ms/call, {replayed}, MAX_CONCURRENCY=1, cache off (median)", zero1.wall_ms, "ms", note=spread("zero1"))
        table.add("zero_speedup", "  speed-up at 0 ms/call", round(speed_z, 2), "x")
        table.add("zero_conc8_cpu_ms", "  8-wide: CPU time of the binary", cpu(zero8), "ms")
        table.add("zero_conc1_cpu_ms", "  1-wide: CPU time of the binary", cpu(zero1), "ms")
        table.add("zero_conc8_own_ms", "  8-wide: time with no request outstanding", zero8.own_ms, "ms")
        table.add("zero_conc1_own_ms", "  1-wide: time with no request outstanding", zero1.own_ms, "ms")
        table.add("binary_mib", "release binary size" + (" (stripped)" if results["binary"].get("stripped") else ""),
                  round(size / 1024 / 1024, 2), "MiB", "< 15 MiB", size < 15 * 1024 * 1024)
        table.add("alerts_received", "alerts received by the SQS subscriber (cold + 2 warm)", alerts, "", "3", alerts == 3)

        # per-operation view: budget vs cold vs warm
        ops = sorted(set(expected) | set(cold.calls) | set().union(*(w.calls for w in warms)))
        op_rows = [{"operation": op, "budget": expected.get(op, 0), "cold": cold.calls.get(op, 0),
                    **{f"warm{i}": w.calls.get(op, 0) for i, w in enumerate(warms, 2)},
                    "live_8wide": live8.calls.get(op, 0), "live_1wide": live1.calls.get(op, 0)} for op in ops]
        load_after = loadavg()

        m = results["machine"]
        print()
        print(f"machine: {m['nproc']} CPUs ({m['cpu']}, {m['arch']}), {m['memory_gib']} GiB, Linux {m['kernel']}, Python {m['python']}; {m['date']}")
        print(f"load:    {load_before} before, {load_after} after (1/5/15-minute load averages; the emulator shares these CPUs)")
        b = results["binary"]
        print(f"binary:  {b['path']} ({b['bytes']:,} bytes, built {b['built']}; tree at git {b.get('git')}; {b.get('file', '')[:48]})")
        print()
        print(table.render())
        print()
        print("AWS calls by operation (stand-in counter, per invocation):")
        head = ["operation", "budget", "cold", *[f"warm{i}" for i in range(2, 2 + len(warms))], "cold 8-wide", "cold 1-wide"]
        cols = [[r["operation"], r["budget"], r["cold"], *[r[f"warm{i}"] for i in range(2, 2 + len(warms))], r["live_8wide"], r["live_1wide"]] for r in op_rows]
        totals = ["total", expected_total, cold.total_calls, *[w.total_calls for w in warms], live8.total_calls, live1.total_calls]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *cols, totals)]
        for row in [head, *cols, totals]:
            print("  " + "  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w) for i, (x, w) in enumerate(zip(row, widths))))
        print()
        print("call budget on the seeded account (pages as the emulator serves them: each request's maxResults, "
              f"which the binary sets to ListClusters {sizes['ecs:ListClusters']}, ListServices {sizes['ecs:ListServices']}, "
              f"App Runner ListServices {sizes['apprunner:ListServices']}; moto answers ListFunctions in one page):")
        print("  " + " + ".join(f"{v} {k.split(':')[1]}" for k, v in expected.items()) + f" = {expected_total}")
        mismatched = {op: (expected.get(op, 0), cold.calls.get(op, 0)) for op in ops if expected.get(op, 0) != cold.calls.get(op, 0)}
        if mismatched:
            print("  differs from the cold count: " + ", ".join(f"{op} budget {e} measured {c}" for op, (e, c) in mismatched.items()))
        if dups:
            print("  repeated identical requests (cold): " + "; ".join(f"{k} x{n}" for k, n in list(dups.items())[:10]))
        print()
        print("emulator serving time per operation (moto + stand-in; count x mean ms):")
        for label, meas in ((f"live, 1-wide, {args.latency_ms} ms injected", live1), (f"live, 8-wide, {args.latency_ms} ms injected", live8),
                            (f"{replayed}, 1-wide, 0 ms", zero1), (f"{replayed}, 8-wide, 0 ms", zero8)):
            stats = serving_by_op(meas)
            print(f"  {label}: " + ", ".join(f"{op.split(':')[1]} {v['n']}x{v['mean_ms']:.1f}" for op, v in stats.items()))
        gcs = [("cold", cold.gc_ms), ("live 8-wide", live8.gc_ms), ("live 1-wide", live1.gc_ms), ("8-wide@0", zero8.gc_ms), ("8-wide@lat", lat8.gc_ms)]
        print("  emulator GC pauses inside the windows: " + ", ".join(f"{k} {v:.0f} ms" for k, v in gcs)
              + f"; replay memo {len(replay.memo)} answers, {replay.hits} hits, {replay.misses} misses")
        total_s = time.perf_counter() - run_started
        print(f"\ntotal bench time {total_s:.1f} s (seeding {seed_seconds:.1f} s)")

        results.update({
            "load_average": {"before": load_before, "after": load_after},
            "figures": table.rows,
            "calls_by_operation": op_rows,
            "call_budget": {"expected": expected, "total": expected_total, "page_sizes": sizes, "mismatched": mismatched},
            "duplicate_requests_cold": dups,
            "emulator_serving_by_operation": {"cold": serving_by_op(cold), "live_latency_8": serving_by_op(live8), "live_latency_1": serving_by_op(live1), "cold_zero_8": serving_by_op(zero8), "cold_zero_1": serving_by_op(zero1),
                                              "cold_latency_8": serving_by_op(lat8), "cold_latency_1": serving_by_op(lat1)},
            "invocations": {
                name: [x.summary() for x in xs]
                for name, xs in [("cold", [cold]), *[(f"warm{i}", [w]) for i, w in enumerate(warms, 2)], ("marker_skip", [marker]),
                                 ("live_latency_8", [live8]), ("live_latency_1", [live1]),
                                 ("cold_latency_8", runs["lat8"]), ("cold_latency_1", runs["lat1"]),
                                 ("cold_zero_8", runs["zero8"]), ("cold_zero_1", runs["zero1"])]
            },
            "startup_ms_all": [round(s, 2) for s in startups],
            "latency_ms": args.latency_ms,
            "moto_replayed": not args.live_moto,
            "replay": {"answers": len(replay.memo), "hits": replay.hits, "misses": replay.misses},
            "repeat": args.repeat,
            "total_seconds": round(total_s, 1),
        })
    except (TimeLimit, RuntimeError) as e:
        problems.append(str(e))
    finally:
        signal.alarm(0)
        for p in list(processes):
            try:
                p.stop()
            except Exception:  # noqa: BLE001 - best effort at the end
                pass
        emulator.stop()
        gc_clock.stop()

    results["problems"] = problems
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
        print(f"wrote {args.json}")
    for p in problems:
        print(f"bench: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
