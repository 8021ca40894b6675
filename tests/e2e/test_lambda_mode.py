"""The binary as a Lambda function (AWS_LAMBDA_RUNTIME_API set), driven by the local Runtime API.
Skipped without EPG_BIN."""

from __future__ import annotations

import pytest

from seed import event, event_for, image_uri

pytestmark = pytest.mark.usefixtures("epg_bin")


def test_one_process_serves_several_events(seed, run_lambda, emulator):
    """The seed story through the Runtime API, then a skipped event, in the same warm process:
    the return value is the JSON report, and clients built once keep working."""
    topic, queue = seed.alert_topic()
    pushed = seed.push_image("web", "latest", platforms=[("linux", "arm64")])
    seed.cluster("prod")
    seed.ecs_service("prod", "checkout", seed.task_definition("checkout", image_uri("web", "latest")))

    run = run_lambda(
        [event_for(pushed), event("web", "latest", pushed.digest, action="DELETE")],
        env={"ALERT_TOPIC_ARN": topic, "ACTIONS": "alert,tag"},
    )

    assert run.init_error is None, run.stderr
    assert len(run.invocations) == 2 and all(i.done.is_set() for i in run.invocations), (run.exit_code, run.stderr)
    first, second = run.invocations
    assert first.ok, (first.error, run.stderr)
    assert first.response["verdict"] == "incompatible"
    assert [c["name"] for c in first.response["consumers"]] == ["checkout"]
    assert first.response["consumers"][0]["cluster"] == "prod"
    assert second.ok and second.response["verdict"] == "skipped"
    assert len(seed.received(queue, wait_seconds=1)) == 1
    assert seed.tags_of("web", pushed.digest) == ["incompatible-latest", "latest"]
    assert emulator.url_secret not in run.stdout + run.stderr  # logs never carry the pre-signed URL


def test_marker_tag_event_does_not_loop(seed, run_lambda, emulator):
    topic, _queue = seed.alert_topic()
    pushed = seed.push_image("web", "latest")
    emulator.reset_calls()
    run = run_lambda([event_for(pushed, tag="incompatible-latest")], env={"ALERT_TOPIC_ARN": topic, "ACTIONS": "alert,tag"})
    [inv] = run.invocations
    assert inv.ok and inv.response["verdict"] == "skipped"
    assert not emulator.requests("ecr:*") and not emulator.requests("sns:*")


def test_bad_configuration_fails_at_init(run_lambda):
    run = run_lambda([event("web", "latest", "sha256:" + "a" * 64)], env={"ACTIONS": "explode"}, timeout=10)
    [inv] = run.invocations
    # Either the runtime reports an init error or the invocation fails; it never reports success.
    assert run.init_error is not None or not inv.ok
