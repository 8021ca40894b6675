"""Scenario tests: the compiled binary's `check` against the emulator (skipped without EPG_BIN).

Assertions stay on the contract in DESIGN.md (exit codes, JSON report keys and values, what a
subscriber receives, what ends up in ECR), not on wording.
"""

from __future__ import annotations

from typing import Any

import pytest

from binary import consumer

from seed import OCI_INDEX, event, event_for, image_uri

# Everything a scenario needs from the binary. The fixture `epg_bin` skips when it is missing.
pytestmark = pytest.mark.usefixtures("epg_bin")

def action_kinds(report: dict[str, Any]) -> list[str]:
    return sorted(a["kind"] for a in report["actions"])


def fargate_service(seed, name: str, image: str, cpu_architecture: str | None = None, cluster: str = "prod") -> str:
    if cluster not in [c.rsplit("/", 1)[-1] for c in seed.aws.ecs.list_clusters()["clusterArns"]]:
        seed.cluster(cluster)
    td = seed.task_definition(name, image, cpu_architecture=cpu_architecture)
    return seed.ecs_service(cluster, name, td, launch_type="FARGATE")


# ---------------------------------------------------------------------------- the seed story
def test_arm64_image_breaks_fargate_service_alerts_and_tags(seed, check, alerts):
    """Built on an Apple-silicon Mac, pushed as web:latest; the Fargate service has no
    runtimePlatform, so it runs linux/amd64 and would die with `exec format error`."""
    pushed = seed.push_image("web", "latest", platforms=[("linux", "arm64")])
    arn = fargate_service(seed, "checkout", image_uri("web", "latest"))

    result, report = check(event_for(pushed))

    assert result.code == 1 and report["verdict"] == "incompatible"
    image = report["image"]
    assert (image["registry_id"], image["region"], image["repository"], image["tag"]) == ("123456789012", "us-east-1", "web", "latest")
    assert image["digest"] == pushed.digest and image["platforms"] == ["linux/arm64"]
    c = consumer(report, "checkout")
    assert (c["kind"], c["arn"], c["cluster"], c["relation"]) == ("ecs-service", arn, "prod", "affected")
    assert c["requires"] == ["linux/amd64"] and c["verdict"] == "incompatible" and c["reason"]

    # Acted: one alert a subscriber can filter on, and the marker tag on the same digest.
    assert action_kinds(report) == ["sns-alert", "tag"]
    [envelope] = seed.received(alerts[1], wait_seconds=1)
    assert envelope["MessageId"] == next(a for a in report["actions"] if a["kind"] == "sns-alert")["message_id"]
    attrs = {k: v["Value"] for k, v in envelope["MessageAttributes"].items()}
    assert attrs["verdict"] == "incompatible" and attrs["repository"] == "web" and attrs["severity"] == "high"
    assert 0 < len(envelope["Subject"]) < 100
    assert "checkout" in envelope["Message"] and "linux/arm64" in envelope["Message"]
    assert next(a for a in report["actions"] if a["kind"] == "tag")["tag"] == "incompatible-latest"
    assert seed.tags_of("web", pushed.digest) == ["incompatible-latest", "latest"]


def test_dry_run_reads_everything_and_acts_on_nothing(seed, check, alerts, emulator):
    pushed = seed.push_image("web", "latest")
    fargate_service(seed, "checkout", image_uri("web", "latest"))
    emulator.reset_calls()  # the journal then holds only what the binary sent
    result, report = check(event_for(pushed), "--dry-run")
    assert result.code == 1 and report["verdict"] == "incompatible"
    assert seed.received(alerts[1]) == []
    assert seed.tags_of("web", pushed.digest) == ["latest"]
    assert not emulator.requests("sns:Publish") and not emulator.requests("ecr:PutImage")


def test_marker_push_that_follows_is_skipped_without_aws_calls(seed, check, emulator):
    """The tag action emits its own push event: it must be recognised, or the function loops."""
    pushed = seed.push_image("web", "latest")
    emulator.reset_calls()
    result, report = check(event_for(pushed, tag="incompatible-latest"))
    assert result.code == 0 and report["verdict"] == "skipped" and report["reason"]
    assert not emulator.requests("ecr:*")


# ---------------------------------------------------------------------------- compatible cases
def test_arm64_fargate_task_definition_is_compatible(seed, check, alerts):
    pushed = seed.push_image("web", "latest", platforms=[("linux", "arm64")])
    fargate_service(seed, "checkout", image_uri("web", "latest"), cpu_architecture="ARM64")
    result, report = check(event_for(pushed))
    assert result.code == 0 and report["verdict"] == "compatible"
    c = consumer(report, "checkout")
    assert c["requires"] == ["linux/arm64"] and c["verdict"] == "compatible"
    assert report["actions"] == [] and seed.received(alerts[1]) == []
    assert seed.tags_of("web", pushed.digest) == ["latest"]


def test_buildx_index_with_attestations_is_compatible(seed, check):
    pushed = seed.push_image("web", "latest", platforms=[("linux", "amd64"), ("linux", "arm64")], attestations=True)
    fargate_service(seed, "checkout", image_uri("web", "latest"))
    result, report = check(event_for(pushed))
    assert report["verdict"] == "compatible"
    assert report["image"]["media_type"] == OCI_INDEX
    assert sorted(report["image"]["platforms"]) == ["linux/amd64", "linux/arm64"]  # no unknown/unknown


# ---------------------------------------------------------------------------- other consumers
def test_apprunner_auto_deploy_with_arm64_image_is_critical(seed, check, alerts):
    pushed = seed.push_image("web", "latest")
    service = seed.apprunner_service("storefront", image_uri("web", "latest"), auto_deploy=True)
    result, report = check(event_for(pushed))
    assert result.code == 1 and report["verdict"] == "incompatible"
    c = consumer(report, "storefront")
    assert (c["kind"], c["arn"], c["relation"], c["requires"]) == ("apprunner-service", service["ServiceArn"], "affected", ["linux/amd64"])
    [envelope] = seed.received(alerts[1], wait_seconds=1)
    assert envelope["MessageAttributes"]["severity"]["Value"] == "critical"


@pytest.mark.parametrize("arch, expected", [("arm64", "compatible"), ("amd64", "incompatible")])
def test_ec2_graviton_cluster_takes_instance_architecture(seed, check, arch, expected):
    pushed = seed.push_image("web", "latest", platforms=[("linux", arch)])
    seed.cluster("graviton")
    seed.container_instance("graviton", "arm64")
    seed.container_instance("graviton", "arm64")
    td = seed.task_definition("api", image_uri("web", "latest"), requires=["EC2"])
    seed.ecs_service("graviton", "api", td, launch_type="EC2")
    _, report = check(event_for(pushed))
    assert report["verdict"] == expected
    c = consumer(report, "api")
    assert c["requires"] == ["linux/arm64"] and c["cluster"] == "graviton" and c["verdict"] == expected


def test_placement_constraint_narrows_a_mixed_cluster(seed, check):
    pushed = seed.push_image("web", "latest", platforms=[("linux", "amd64")])
    seed.cluster("mixed")
    seed.container_instance("mixed", "x86_64")
    seed.container_instance("mixed", "arm64")
    arm_only = [{"type": "memberOf", "expression": "attribute:ecs.cpu-architecture == arm64"}]
    td = seed.task_definition("api", image_uri("web", "latest"), requires=["EC2"], placement_constraints=arm_only)
    seed.ecs_service("mixed", "api", td, launch_type="EC2")
    _, report = check(event_for(pushed))
    c = consumer(report, "api")
    assert c["requires"] == ["linux/arm64"] and c["verdict"] == "incompatible"


@pytest.mark.parametrize("strategy", ["FARGATE_SPOT", "cluster-default"])
def test_fargate_capacity_providers_count_as_fargate(seed, check, strategy):
    pushed = seed.push_image("web", "latest", platforms=[("linux", "arm64")])
    spot = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    seed.cluster("prod", capacity_providers=["FARGATE", "FARGATE_SPOT"], default_strategy=spot)
    td = seed.task_definition("worker", image_uri("web", "latest"))
    if strategy == "FARGATE_SPOT":
        seed.ecs_service("prod", "worker", td, capacity_provider_strategy=spot)
    else:
        seed.ecs_service("prod", "worker", td, launch_type=None)
    _, report = check(event_for(pushed))
    c = consumer(report, "worker")
    assert c["requires"] == ["linux/amd64"] and c["verdict"] == "incompatible"


def test_asg_capacity_provider_uses_instance_architecture(seed, check):
    pushed = seed.push_image("web", "latest", platforms=[("linux", "arm64")])
    provider = seed.asg_capacity_provider("graviton-asg", arch="arm64")
    seed.cluster("graviton", capacity_providers=[provider])
    seed.container_instance("graviton", "arm64")
    td = seed.task_definition("api", image_uri("web", "latest"), requires=["EC2"])
    seed.ecs_service("graviton", "api", td, capacity_provider_strategy=[{"capacityProvider": provider, "weight": 1}])
    _, report = check(event_for(pushed))
    c = consumer(report, "api")
    assert c["requires"] == ["linux/arm64"] and c["verdict"] == "compatible"


def test_ec2_cluster_without_instances_is_unknown(seed, check, alerts):
    pushed = seed.push_image("web", "latest")
    seed.cluster("empty")
    seed.ecs_service("empty", "api", seed.task_definition("api", image_uri("web", "latest"), requires=["EC2"]), launch_type="EC2")
    result, report = check(event_for(pushed))
    assert result.code == 0 and report["verdict"] == "unknown"
    c = consumer(report, "api")
    assert c["verdict"] == "unknown" and c["reason"]
    assert seed.received(alerts[1]) == []  # ALERT_ON defaults to incompatible only


def test_lambda_x86_function_fed_arm64_image(seed, check, alerts):
    pushed = seed.push_image("web", "latest")
    arn = seed.lambda_function("thumbnailer", image_uri("web", "latest"), architecture="x86_64")
    result, report = check(event_for(pushed))
    assert result.code == 1
    c = consumer(report, "thumbnailer")
    assert (c["kind"], c["arn"], c["requires"], c["verdict"]) == ("lambda-function", arn, ["linux/amd64"], "incompatible")
    [envelope] = seed.received(alerts[1], wait_seconds=1)
    assert envelope["MessageAttributes"]["severity"]["Value"] == "warning"


def test_lambda_rejects_an_index_even_with_its_platform(seed, check):
    pushed = seed.push_image("web", "latest", platforms=[("linux", "amd64"), ("linux", "arm64")], attestations=True)
    seed.lambda_function("thumbnailer", image_uri("web", "latest"), architecture="x86_64")
    _, report = check(event_for(pushed))
    assert consumer(report, "thumbnailer")["verdict"] == "incompatible"


# ---------------------------------------------------------------------------- references
def test_consumer_of_another_tag_is_related(seed, check):
    pushed = seed.push_image("web", "latest")
    fargate_service(seed, "checkout", image_uri("web", "stable"))
    result, report = check(event_for(pushed))
    c = consumer(report, "checkout")
    assert c["relation"] == "related" and c["verdict"] == "incompatible"
    assert result.code == 1 and report["verdict"] == "incompatible"


@pytest.mark.parametrize(
    "reference",
    [
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/web",  # no tag means latest
        "123456789012.dkr-ecr.us-east-1.on.aws/web:latest",  # dual-stack endpoint
    ],
)
def test_reference_spellings_that_name_the_pushed_tag(seed, check, reference):
    pushed = seed.push_image("web", "latest")
    fargate_service(seed, "checkout", reference)
    _, report = check(event_for(pushed))
    assert consumer(report, "checkout")["relation"] == "affected"


@pytest.mark.parametrize(
    "reference",
    [
        image_uri("web", "latest", account="999999999999"),  # same repository name, another account
        image_uri("web", "latest", region="eu-west-1"),  # same account, another region
        image_uri("web-admin", "latest"),  # a name that merely starts the same
    ],
)
def test_same_name_elsewhere_is_not_a_consumer(seed, check, reference):
    pushed = seed.push_image("web", "latest")
    fargate_service(seed, "elsewhere", reference)
    result, report = check(event_for(pushed))
    assert result.code == 0 and report["verdict"] == "compatible"
    assert report["consumers"] == []


def test_untagged_child_push_without_digest_consumer_is_skipped(seed, check, alerts):
    pushed = seed.push_image("web", "latest", platforms=[("linux", "amd64"), ("linux", "arm64")], kind="oci")
    fargate_service(seed, "checkout", image_uri("web", "latest"))
    arm_child = pushed.children[1]
    for tag in (None, ""):  # ECR sends it without image-tag, or with an empty one
        result, report = check(event_for(arm_child, tag=tag))
        assert result.code == 0 and report["verdict"] == "skipped" and report["reason"]
    assert seed.received(alerts[1]) == []


def test_untagged_push_referenced_by_digest_is_validated(seed, check):
    pushed = seed.push_image("web", "latest", platforms=[("linux", "amd64"), ("linux", "arm64")], kind="oci")
    arm_child = pushed.children[1]
    fargate_service(seed, "pinned", image_uri("web", digest=arm_child.digest))
    result, report = check(event_for(arm_child, tag=None))
    assert result.code == 1
    c = consumer(report, "pinned")
    assert c["relation"] == "affected" and c["verdict"] == "incompatible"


# ---------------------------------------------------------------------------- skips and failures
@pytest.mark.parametrize("action, result_", [("DELETE", "SUCCESS"), ("PUSH", "FAILURE")])
def test_not_a_successful_push_is_skipped(seed, check, action, result_):
    _, report = check(event("web", "latest", "sha256:" + "a" * 64, action=action, result=result_))
    assert report["verdict"] == "skipped" and report["reason"]


def test_image_deleted_before_read(seed, check, alerts):
    """Pushed, then deleted before the function read it: nothing to validate, so skipped (exit 0),
    with a reason that says so, and nobody alerted."""
    pushed = seed.push_image("web", "latest")
    fargate_service(seed, "checkout", image_uri("web", "latest"))
    seed.delete_image("web", digest=pushed.digest)
    result, report = check(event_for(pushed))
    assert result.code == 0 and report["verdict"] == "skipped"
    assert "no longer exists" in report["reason"] or "deleted" in report["reason"], report["reason"]
    assert report["actions"] == [] and report["consumers"] == []
    assert seed.received(alerts[1]) == []


def test_access_denied_on_one_cluster_is_unknown_not_dropped(seed, check, emulator):
    pushed = seed.push_image("web", "latest", platforms=[("linux", "arm64")])
    fargate_service(seed, "checkout", image_uri("web", "latest"), cpu_architecture="ARM64", cluster="prod")
    fargate_service(seed, "billing", image_uri("web", "latest"), cluster="restricted")
    emulator.add_fault(target="ecs:*", match="restricted", status=400, type="AccessDeniedException", count=-1)
    result, report = check(event_for(pushed))
    assert result.code == 0 and report["verdict"] == "unknown"
    assert consumer(report, "checkout")["verdict"] == "compatible"
    unknown = [c for c in report["consumers"] if c["verdict"] == "unknown"]
    assert unknown and all(c["reason"] for c in unknown)


def test_throttling_is_retried(seed, check, emulator):
    """Several throttles in a row on the ECS calls that page through an account: same verdict."""
    pushed = seed.push_image("web", "latest")
    fargate_service(seed, "checkout", image_uri("web", "latest"))
    _, baseline = check(event_for(pushed), "--dry-run")
    emulator.add_fault(target="ecr:BatchGetImage", status=400, type="ThrottlingException", count=1)
    emulator.add_fault(target="ecs:ListServices", status=400, type="ThrottlingException", count=3)
    emulator.add_fault(target="ecs:DescribeServices", status=400, type="ThrottlingException", count=3)
    emulator.reset_calls()
    result, report = check(event_for(pushed), "--dry-run")
    assert result.code == 1 and report["verdict"] == "incompatible"
    assert report["consumers"] == baseline["consumers"]
    calls = emulator.get_calls()
    assert calls["ecs:ListServices"] == 4 and calls["ecs:DescribeServices"] == 4, calls


def test_ecr_unreachable_is_a_failure(seed, run_cli, event_file, env, emulator):
    pushed = seed.push_image("web", "latest")
    emulator.add_fault(target="ecr", drop=True, count=-1)
    result = run_cli("check", "--event", event_file(event_for(pushed)), "--format", "json", env=env, timeout=120)
    assert result.code == 2
    [line] = result.stderr.strip().splitlines()  # one line naming what was wrong
    assert "ecr:BatchGetImage" in line


def test_bad_event_file_is_exit_2(run_cli, event_file, tmp_path, env):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert run_cli("check", "--event", str(bad), "--format", "json", env=env).code == 2
    assert run_cli("check", "--event", str(tmp_path / "missing.json"), env=env).code == 2


def test_bad_configuration_is_exit_2(seed, run_cli, event_file, env):
    pushed = seed.push_image("web", "latest")
    result = run_cli("check", "--event", event_file(event_for(pushed)), env={**env, "ACTIONS": "alert,explode"})
    assert result.code == 2 and "ACTIONS" in result.stderr


# ---------------------------------------------------------------------------- other entry points
def test_check_by_repository_and_tag(seed, run_cli, env):
    seed.push_image("web", "latest")
    fargate_service(seed, "checkout", image_uri("web", "latest"))
    result = run_cli("check", "--repository", "web", "--tag", "latest", "--format", "json", env=env)
    assert result.code == 1 and result.report()["verdict"] == "incompatible"


def test_inspect_offline(seed, run_cli, tmp_path, emulator):
    pushed = seed.push_image("web", "v1", platforms=[("linux", "amd64"), ("linux", "arm", "v7")], kind="oci")
    index = tmp_path / "index.json"
    index.write_text(pushed.manifest)
    result = run_cli("inspect", str(index), "--format", "json")
    assert result.code == 0
    assert result.report()["kind"] == "index"
    assert sorted(result.report()["platforms"]) == ["linux/amd64", "linux/arm/v7"]
    child = pushed.children[1]
    manifest, config = tmp_path / "m.json", tmp_path / "c.json"
    manifest.write_text(child.manifest)
    config.write_bytes(emulator.standin.blobs[child.config_digest])
    result = run_cli("inspect", str(manifest), "--config", str(config), "--format", "json")
    assert result.code == 0 and result.report()["kind"] == "manifest" and result.report()["platforms"] == ["linux/arm/v7"]
