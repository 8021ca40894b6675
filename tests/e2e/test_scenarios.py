"""More scenarios for `check` (and one in Lambda mode): odd images, partial failures, retries.

Each one asserts the JSON report (verdict, consumers), and where an alert is expected, what the SQS
subscriber received and the marker tag left in ECR. Skipped without EPG_BIN.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from binary import consumer

from seed import HELM_CONFIG, OCI_MANIFEST, event, event_for, image_uri, sha256

pytestmark = pytest.mark.usefixtures("epg_bin")

MARKER = "incompatible-"
FIX = "docker buildx build --platform"
# Keeps the failure cases quick: the SDK's default is 5 attempts with backoff.
TWO_ATTEMPTS = {"AWS_MAX_ATTEMPTS": "2"}


def fargate_service(seed, name: str, image: str, cpu_architecture: str | None = None, cluster: str = "prod") -> str:
    if cluster not in [c.rsplit("/", 1)[-1] for c in seed.aws.ecs.list_clusters()["clusterArns"]]:
        seed.cluster(cluster)
    td = seed.task_definition(name, image, cpu_architecture=cpu_architecture)
    return seed.ecs_service(cluster, name, td, launch_type="FARGATE")


def markers(seed, repo: str, digest: str) -> list[str]:
    return [t for t in seed.tags_of(repo, digest) if t.startswith(MARKER)]


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"stderr is not one line:\n{result.stderr}"
    assert lines[0].startswith("ecr-platform-guard: error: "), lines[0]
    assert "panicked" not in result.stderr
    return lines[0]


def assert_alert(envelope: dict[str, Any], report: dict[str, Any], names: list[str], severity: str) -> None:
    """What a subscriber got: subject, a body naming the broken consumers and the fix, attributes."""
    image = report["image"]
    assert envelope["Type"] == "Notification"
    assert envelope["MessageId"] == next(a for a in report["actions"] if a["kind"] == "sns-alert")["message_id"]
    subject = envelope["Subject"]
    assert 0 < len(subject) < 100 and subject.isascii()
    assert subject.startswith("INCOMPATIBLE image ") and f"{image['repository']}:{image['tag']}" in subject
    body = envelope["Message"]
    for name in names:
        assert name in body, f"{name} not in the alert:\n{body}"
    assert FIX in body, body
    for platform in image["platforms"]:
        assert platform in body
    attrs = {k: v["Value"] for k, v in envelope["MessageAttributes"].items()}
    assert attrs == {"verdict": "incompatible", "repository": image["repository"], "severity": severity}


# ---------------------------------------------------------------------------- odd platforms
def test_windows_image_on_linux_fargate_is_incompatible(seed, check, alerts):
    """A Windows Server 2022 image pushed where a Linux Fargate service pulls it."""
    pushed = seed.push_image("web", "latest", platforms=[("windows", "amd64")], os_version="10.0.20348.1")
    arn = fargate_service(seed, "checkout", image_uri("web", "latest"))

    result, report = check(event_for(pushed))

    assert result.code == 1 and report["verdict"] == "incompatible" and report["severity"] == "high"
    assert report["image"]["platforms"] == ["windows(10.0.20348.1)/amd64"]
    c = consumer(report, "checkout")
    assert (c["kind"], c["arn"], c["cluster"], c["relation"]) == ("ecs-service", arn, "prod", "affected")
    assert (c["requires"], c["verdict"]) == (["linux/amd64"], "incompatible")
    assert "windows" in c["reason"] and "linux/amd64" in c["reason"]
    [envelope] = seed.received(alerts[1], wait_seconds=1)
    assert_alert(envelope, report, ["checkout"], "high")
    assert seed.tags_of("web", pushed.digest) == ["incompatible-latest", "latest"]


def test_arm_v7_image_on_graviton_ec2_cluster_is_incompatible(seed, check, alerts):
    """32-bit ARM does not run on Graviton (no AArch32 execution state), though both are 'ARM'."""
    pushed = seed.push_image("web", "v2", platforms=[("linux", "arm", "v7")])
    seed.cluster("graviton")
    seed.container_instance("graviton", "arm64")
    seed.container_instance("graviton", "arm64")
    td = seed.task_definition("api", image_uri("web", "v2"), requires=["EC2"])
    arn = seed.ecs_service("graviton", "api", td, launch_type="EC2")

    result, report = check(event_for(pushed))

    assert result.code == 1 and report["verdict"] == "incompatible"
    assert report["image"]["platforms"] == ["linux/arm/v7"]
    c = consumer(report, "api")
    assert (c["kind"], c["arn"], c["cluster"], c["relation"]) == ("ecs-service", arn, "graviton", "affected")
    assert (c["requires"], c["source"], c["verdict"]) == (["linux/arm64"], "ecs.cpu-architecture", "incompatible")
    assert "linux/arm/v7" in c["reason"] and "linux/arm64" in c["reason"]
    [envelope] = seed.received(alerts[1], wait_seconds=1)
    assert_alert(envelope, report, ["api"], "high")
    assert "linux/arm64" in envelope["Message"].split(FIX, 1)[1].splitlines()[0]  # the fix builds for the host
    assert seed.tags_of("web", pushed.digest) == ["incompatible-v2", "v2"]


# ---------------------------------------------------------------------------- not an image / gone
def test_helm_chart_is_skipped_as_not_an_image(seed, check, alerts, emulator):
    chart = seed.push_helm_chart("web", "0.1.0")
    fargate_service(seed, "checkout", image_uri("web", "0.1.0"))  # would be judged if it were an image
    emulator.reset_calls()

    result, report = check(event_for(chart, artifact_media_type=HELM_CONFIG))

    assert result.code == 0 and report["verdict"] == "skipped"
    assert "not an image" in report["reason"] and HELM_CONFIG in report["reason"]
    assert report["consumers"] == [] and report["actions"] == []
    assert report["image"]["digest"] == chart.digest and report["image"]["media_type"] == OCI_MANIFEST
    assert seed.received(alerts[1]) == []
    assert seed.tags_of("web", chart.digest) == ["0.1.0"]
    assert not emulator.requests("ecr:PutImage") and not emulator.requests("sns:*")


@pytest.mark.parametrize("how", ["deleted-after-push", "never-existed"])
def test_image_gone_before_read_is_skipped(seed, check, alerts, how):
    """The event names a digest ECR no longer has (deleted between push and read)."""
    pushed = seed.push_image("web", "latest")
    fargate_service(seed, "checkout", image_uri("web", "latest"))
    if how == "deleted-after-push":
        seed.delete_image("web", digest=pushed.digest)
        ev = event_for(pushed)
    else:
        ev = event("web", "latest", sha256(b"an image that was never stored"))

    result, report = check(ev)

    assert result.code == 0 and report["verdict"] == "skipped"
    assert "no longer exists" in report["reason"] or "deleted" in report["reason"], report["reason"]
    assert report["actions"] == []
    assert seed.received(alerts[1]) == []


# ---------------------------------------------------------------------------- partial failures
def test_access_denied_on_one_cluster_still_alerts_for_another(seed, check, alerts, emulator):
    pushed = seed.push_image("web", "latest", platforms=[("linux", "arm64")])
    fargate_service(seed, "checkout", image_uri("web", "latest"), cluster="prod")
    fargate_service(seed, "billing", image_uri("web", "latest"), cluster="restricted")
    emulator.add_fault(target="ecs:ListServices", match="cluster/restricted", status=400, type="AccessDeniedException", count=-1)

    result, report = check(event_for(pushed))

    assert result.code == 1 and report["verdict"] == "incompatible"
    checkout = consumer(report, "checkout")
    assert (checkout["kind"], checkout["cluster"], checkout["verdict"]) == ("ecs-service", "prod", "incompatible")
    denied = consumer(report, "*")
    assert (denied["kind"], denied["cluster"], denied["verdict"]) == ("ecs-service", "restricted", "unknown")
    assert "AccessDenied" in denied["reason"] and "restricted" in denied["reason"]
    assert all(c["name"] != "billing" for c in report["consumers"])
    [envelope] = seed.received(alerts[1], wait_seconds=1)
    assert_alert(envelope, report, ["checkout"], "high")
    assert markers(seed, "web", pushed.digest) == ["incompatible-latest"]


def test_sns_failure_fails_the_run_and_the_retry_neither_duplicates_nor_loses(seed, run, check, alerts, emulator):
    """Publish fails (5xx after retries): exit 2, so the event is retried. The tag went on first;
    the retry finds it there, adds no second one, and the alert goes out exactly once."""
    pushed = seed.push_image("web", "latest")
    fargate_service(seed, "checkout", image_uri("web", "latest"))
    emulator.add_fault(target="sns:Publish", status=500, count=-1)

    failed = run(event_for(pushed), env_over=TWO_ATTEMPTS)

    assert failed.code == 2, failed.stdout + failed.stderr
    assert "sns:Publish" in one_error_line(failed)
    assert failed.stdout == ""
    assert seed.received(alerts[1]) == []

    emulator.clear_faults()
    result, report = check(event_for(pushed))

    assert result.code == 1 and report["verdict"] == "incompatible"
    assert markers(seed, "web", pushed.digest) == ["incompatible-latest"]
    assert seed.tags_of("web", pushed.digest) == ["incompatible-latest", "latest"]
    [envelope] = seed.received(alerts[1], wait_seconds=1)
    assert_alert(envelope, report, ["checkout"], "high")


@pytest.mark.parametrize("how", ["dropped-connection", "closed-port"])
def test_apprunner_unreachable_still_reports_ecs(seed, check, alerts, emulator, how):
    pushed = seed.push_image("web", "latest")
    fargate_service(seed, "checkout", image_uri("web", "latest"))
    seed.apprunner_service("storefront", image_uri("web", "latest"))  # out of reach: not reported
    env_over = dict(TWO_ATTEMPTS)  # the SDK retries connection failures; keep it quick
    if how == "dropped-connection":
        emulator.add_fault(target="AppRunner.*", drop=True, count=-1)
    else:
        env_over["AWS_ENDPOINT_URL_APPRUNNER"] = "http://127.0.0.1:9"

    result, report = check(event_for(pushed), env_over=env_over)

    assert result.code == 1 and report["verdict"] == "incompatible"
    assert [c["name"] for c in report["consumers"]] == ["checkout"]
    assert consumer(report, "checkout")["verdict"] == "incompatible"
    assert any("App Runner" in w for w in report["warnings"]), report["warnings"]
    [envelope] = seed.received(alerts[1], wait_seconds=1)
    assert_alert(envelope, report, ["checkout"], "high")


def test_apprunner_unreachable_with_compatible_ecs_is_exit_0(seed, check):
    pushed = seed.push_image("web", "latest", platforms=[("linux", "amd64")])
    fargate_service(seed, "checkout", image_uri("web", "latest"))
    result, report = check(event_for(pushed), env_over={"AWS_ENDPOINT_URL_APPRUNNER": "http://127.0.0.1:9", **TWO_ATTEMPTS})
    assert result.code == 0 and report["verdict"] == "compatible"
    assert consumer(report, "checkout")["verdict"] == "compatible"
    assert any("App Runner" in w for w in report["warnings"]), report["warnings"]


# ---------------------------------------------------------------------------- config blob trouble
GOOD_CONFIG = json.dumps({"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
AMD64_CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
# Valid JSON, an arm64 config, padded past the 4 MiB cap with whitespace.
HUGE_CONFIG = GOOD_CONFIG[:-1] + b" " * (4 * 1024 * 1024 + 16) + b"}"


@pytest.mark.parametrize(
    "problem, config, served, declared_size, says",
    [
        # The blob under the config digest is another image's config (an amd64 one, which would
        # wrongly pass): the sha256 check must catch it.
        ("digest-mismatch", GOOD_CONFIG, AMD64_CONFIG, None, "digest mismatch"),
        # Declared honestly: refused before download.
        ("too-large-declared", HUGE_CONFIG, None, None, "more than the 4194304"),
        # The descriptor lies about the size: the download itself stops at the cap.
        ("too-large-served", HUGE_CONFIG, None, len(GOOD_CONFIG), "larger than 4194304"),
        ("not-json", b"\x89PNG\r\n\x1a\n not a config", None, None, "not valid JSON"),
    ],
)
def test_config_blob_problem_is_unknown_not_a_crash(seed, check, alerts, emulator, problem, config, served, declared_size, says):
    pushed = seed.push_with_config("web", "latest", config, served=served, declared_size=declared_size)
    fargate_service(seed, "checkout", image_uri("web", "latest"))
    emulator.reset_calls()

    result, report = check(event_for(pushed))

    assert result.code == 0 and report["verdict"] == "unknown"
    assert report["image"]["platforms"] == []
    assert says in report["image"]["platform_error"], report["image"]["platform_error"]
    assert report["reason"].startswith("image platforms could not be read") and says in report["reason"]
    c = consumer(report, "checkout")
    assert (c["relation"], c["requires"], c["verdict"]) == ("affected", ["linux/amd64"], "unknown")
    assert says in c["reason"]
    assert report["actions"] == [] and seed.received(alerts[1]) == []
    assert seed.tags_of("web", pushed.digest) == ["latest"]
    # A declared size over the cap is refused without downloading anything.
    assert len(emulator.requests("s3:GetObject")) == (0 if problem == "too-large-declared" else 1)


# ---------------------------------------------------------------------------- retries
def test_persistent_5xx_from_batch_get_image_is_exit_2(seed, run, alerts, emulator):
    pushed = seed.push_image("web", "latest")
    fargate_service(seed, "checkout", image_uri("web", "latest"))
    emulator.add_fault(target="ecr:BatchGetImage", status=500, count=-1)
    emulator.reset_calls()

    result = run(event_for(pushed), env_over=TWO_ATTEMPTS)

    assert result.code == 2 and result.stdout == ""
    assert "ecr:BatchGetImage" in one_error_line(result)
    assert len(emulator.requests("ecr:BatchGetImage")) == 2  # AWS_MAX_ATTEMPTS honoured
    assert seed.received(alerts[1]) == [] and seed.tags_of("web", pushed.digest) == ["latest"]


def test_one_5xx_from_batch_get_image_is_retried(seed, check, alerts, emulator):
    pushed = seed.push_image("web", "latest")
    fargate_service(seed, "checkout", image_uri("web", "latest"))
    _, baseline = check(event_for(pushed), "--dry-run")
    emulator.add_fault(target="ecr:BatchGetImage", status=500, count=1)
    emulator.reset_calls()

    result, report = check(event_for(pushed))

    assert len(emulator.requests("ecr:BatchGetImage")) == 2
    assert report["verdict"] == baseline["verdict"] == "incompatible" and result.code == 1
    assert report["consumers"] == baseline["consumers"]
    [envelope] = seed.received(alerts[1], wait_seconds=1)
    assert_alert(envelope, report, ["checkout"], "high")
    assert markers(seed, "web", pushed.digest) == ["incompatible-latest"]


def test_duplicate_delivery_same_verdict_one_marker_tag(seed, check, alerts):
    """EventBridge delivers at least once: the same event twice gives the same answer, and the
    marker tag is not doubled ("already exists" counts as done)."""
    pushed = seed.push_image("web", "latest")
    fargate_service(seed, "checkout", image_uri("web", "latest"))

    first_result, first = check(event_for(pushed))
    second_result, second = check(event_for(pushed))

    assert first_result.code == second_result.code == 1
    assert first["verdict"] == second["verdict"] == "incompatible"
    assert first["consumers"] == second["consumers"]
    assert [a.get("tag") for a in second["actions"] if a["kind"] == "tag"] == ["incompatible-latest"]
    assert markers(seed, "web", pushed.digest) == ["incompatible-latest"]
    envelopes = seed.received(alerts[1], wait_seconds=1)
    # No dedupe store: each delivery alerts (safe to repeat), with the same subject.
    assert len(envelopes) == 2 and envelopes[0]["Subject"] == envelopes[1]["Subject"]


# ---------------------------------------------------------------------------- secrets, Lambda mode
@pytest.mark.parametrize("level", ["debug", "trace"])
def test_presigned_url_secret_not_logged(seed, run, emulator, level):
    """The SDK logs response bodies at trace; the binary caps its crates so the URL never shows."""
    pushed = seed.push_image("web", "latest")
    fargate_service(seed, "checkout", image_uri("web", "latest"))
    result = run(event_for(pushed), env_over={"RUST_LOG": level})
    assert result.code == 1, result.stderr[-2000:]
    assert len(emulator.requests("s3:GetObject")) == 1  # the URL was used
    assert result.stderr  # debug logging did run
    assert emulator.url_secret not in result.stdout
    assert emulator.url_secret not in result.stderr


def test_lambda_transient_failure_is_an_invocation_error(seed, run_lambda, emulator):
    """A 5xx that outlasts the SDK's retries must fail the invocation (so Lambda's async retry and
    the DLQ see it), not be returned as a report."""
    topic, _queue = seed.alert_topic()
    pushed = seed.push_image("web", "latest")
    fargate_service(seed, "checkout", image_uri("web", "latest"))
    emulator.add_fault(target="ecs:ListClusters", status=500, count=-1)

    lambda_run = run_lambda([event_for(pushed)], env={"ALERT_TOPIC_ARN": topic, "ACTIONS": "alert,tag", "AWS_MAX_ATTEMPTS": "1"})

    assert lambda_run.init_error is None, lambda_run.stderr
    [inv] = lambda_run.invocations
    assert inv.done.is_set(), lambda_run.stderr
    assert inv.response is None and inv.error is not None, inv.response
    assert inv.error["errorType"] == "TransientAwsError", inv.error
    assert "ecs:ListClusters" in inv.error["errorMessage"]
    assert seed.tags_of("web", pushed.digest) == ["latest"]
