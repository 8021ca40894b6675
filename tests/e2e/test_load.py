"""Load and idempotency: 500 push events through the Lambda handler, ten warm processes at once
(as Lambda scales out), every event delivered several times (EventBridge is at-least-once).

Every delivery must come back with the right report; duplicates must give the same verdict and
leave exactly one marker tag. Bounded: 500 events, ten processes, a 240 s ceiling per process.
"""

from __future__ import annotations

import collections
from concurrent.futures import ThreadPoolExecutor

import pytest

from seed import event_for, image_uri

pytestmark = pytest.mark.usefixtures("epg_bin")

PROCESSES = 10
DELIVERIES = 5  # each distinct push is delivered this many times
REPOS = 10
TAGS = ("v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10")


def test_500_events_concurrently_with_duplicate_deliveries(seed, run_lambda, emulator):
    topic, queue = seed.alert_topic()
    seed.cluster("prod")
    expected = {}
    pushes = []
    for r in range(REPOS):
        repo = f"load/app-{r}"
        for i, tag in enumerate(TAGS):
            # Every other image is arm64: the Fargate x86-64 service on that tag cannot run it.
            arch = "arm64" if (r + i) % 2 else "amd64"
            pushed = seed.push_image(repo, tag, platforms=[("linux", arch)])
            td = seed.task_definition(f"app-{r}-{tag}", image_uri(repo, tag))
            seed.ecs_service("prod", f"app-{r}-{tag}", td)
            expected[pushed.digest] = "incompatible" if arch == "arm64" else "compatible"
            pushes.append(pushed)
    assert len(pushes) * DELIVERIES == 500
    events = [event_for(p) for p in pushes for _ in range(DELIVERIES)]
    # Spread the deliveries of one push over different processes, as EventBridge retries would.
    batches = [events[k::PROCESSES] for k in range(PROCESSES)]

    env = {"ALERT_TOPIC_ARN": topic, "ACTIONS": "alert,tag"}
    with ThreadPoolExecutor(PROCESSES) as pool:
        runs = list(pool.map(lambda batch: run_lambda(batch, env=env, timeout=240), batches))

    verdicts = collections.defaultdict(set)
    answered = 0
    for run in runs:
        assert run.init_error is None, run.stderr[-2000:]
        assert emulator.url_secret not in run.stdout + run.stderr
        for inv in run.invocations:
            assert inv.ok, (inv.error, run.stderr[-2000:])
            report = inv.response
            digest = report["image"]["digest"]
            verdicts[digest].add(report["verdict"])
            affected = [c for c in report["consumers"] if c["relation"] == "affected"]
            assert [c["name"] for c in affected] == [f"app-{report['image']['repository'].rsplit('-', 1)[1]}-{report['image']['tag']}"]
            assert affected[0]["verdict"] == expected[digest], report
            # The repository's other nine tags are reported as related, never dropped.
            assert len(report["consumers"]) == len(TAGS)
            answered += 1
    assert answered == 500
    assert all(v == {expected[d]} for d, v in verdicts.items()), "duplicates gave the same verdict"

    for pushed in pushes:
        tags = seed.tags_of(pushed.repository, pushed.digest)
        if expected[pushed.digest] == "incompatible":
            assert tags == sorted([pushed.tag, f"incompatible-{pushed.tag}"]), tags
        else:
            assert tags == [pushed.tag], tags
    # At-least-once delivery means at-least-once alerts: one per delivery of an incompatible push.
    alerts = seed.received(queue, wait_seconds=1)
    assert len(alerts) == DELIVERIES * sum(1 for v in expected.values() if v == "incompatible")
