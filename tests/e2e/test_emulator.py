"""The harness itself, with plain boto3: if these fail, the product's e2e results mean nothing."""

from __future__ import annotations

import hashlib
import json
import socket
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from runtime_api import RuntimeApi
from seed import (
    ALL_MANIFEST_TYPES,
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    event,
    event_for,
    image_uri,
    sha256,
)


def _http(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# ---------------------------------------------------------------------------- ECR
def test_push_arm64_and_read_back_manifest_and_config(seed, aws, emulator):
    pushed = seed.push_image("web", "latest", platforms=[("linux", "arm64", None)])

    got = aws.ecr.batch_get_image(repositoryName="web", imageIds=[{"imageTag": "latest"}], acceptedMediaTypes=ALL_MANIFEST_TYPES)
    assert got["failures"] == []
    image = got["images"][0]
    assert image["imageManifestMediaType"] == DOCKER_MANIFEST
    assert image["imageManifest"] == pushed.manifest
    assert image["imageId"] == {"imageDigest": pushed.digest, "imageTag": "latest"}
    assert pushed.digest == "sha256:" + hashlib.sha256(image["imageManifest"].encode()).hexdigest()

    config = json.loads(image["imageManifest"])["config"]
    assert config["mediaType"] == DOCKER_CONFIG
    url = aws.ecr.get_download_url_for_layer(repositoryName="web", layerDigest=config["digest"])
    assert url["layerDigest"] == config["digest"]
    status, blob = _http(url["downloadUrl"])
    assert status == 200
    assert sha256(blob) == config["digest"]
    assert len(blob) == config["size"]
    doc = json.loads(blob)
    assert (doc["os"], doc["architecture"]) == ("linux", "arm64")


def test_download_url_errors_like_ecr(seed, aws, emulator):
    seed.push_image("web", "latest")
    with pytest.raises(ClientError) as e:
        aws.ecr.get_download_url_for_layer(repositoryName="web", layerDigest="sha256:" + "0" * 64)
    assert e.value.response["Error"]["Code"] == "LayersNotFoundException"
    with pytest.raises(ClientError) as e:
        aws.ecr.get_download_url_for_layer(repositoryName="nope", layerDigest="sha256:" + "0" * 64)
    assert e.value.response["Error"]["Code"] == "RepositoryNotFoundException"

    digest = emulator.seed_blob(b'{"architecture":"amd64","os":"linux"}')
    url = aws.ecr.get_download_url_for_layer(repositoryName="web", layerDigest=digest)["downloadUrl"]
    assert emulator.url_secret in url  # tests can check the product never logs this
    status, _ = _http(url.replace(emulator.url_secret, "forged"))
    assert status == 403


def test_blob_seeded_over_http_and_tampered_blob(aws, seed, emulator):
    seed.repository("web")
    fake_digest = "sha256:" + "ab" * 32  # bytes that do not hash to their digest: a tampered blob
    status, body = _http(f"{emulator.url}/_standin/blobs/{fake_digest}", "PUT", b"not what you asked for")
    assert status == 200 and json.loads(body)["digest"] == fake_digest
    url = aws.ecr.get_download_url_for_layer(repositoryName="web", layerDigest=fake_digest)["downloadUrl"]
    assert _http(url) == (200, b"not what you asked for")


def test_buildx_index_with_attestations(seed, aws):
    pushed = seed.push_image("web", "v1", platforms=[("linux", "amd64"), ("linux", "arm64")], attestations=True)
    assert pushed.media_type == OCI_INDEX
    index = json.loads(aws.ecr.batch_get_image(repositoryName="web", imageIds=[{"imageTag": "v1"}])["images"][0]["imageManifest"])
    platforms = [(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]]
    assert platforms == [("linux", "amd64"), ("linux", "arm64"), ("unknown", "unknown"), ("unknown", "unknown")]
    assert index["manifests"][2]["annotations"]["vnd.docker.reference.type"] == "attestation-manifest"
    # Every child is in the repository, untagged, under the digest the index names.
    for child in index["manifests"]:
        got = aws.ecr.batch_get_image(repositoryName="web", imageIds=[{"imageDigest": child["digest"]}])
        assert got["images"][0]["imageManifestMediaType"] == OCI_MANIFEST
    untagged = [i for i in aws.ecr.list_images(repositoryName="web")["imageIds"] if "imageTag" not in i]
    assert len(untagged) == 4


def test_marker_tag_on_same_manifest(seed, aws):
    pushed = seed.push_image("web", "latest")
    # What the product does to mark an image: PutImage of the same bytes and media type, new tag.
    aws.ecr.put_image(repositoryName="web", imageManifest=pushed.manifest, imageManifestMediaType=pushed.media_type, imageTag="incompatible-latest")
    assert seed.tags_of("web", pushed.digest) == ["incompatible-latest", "latest"]
    with pytest.raises(ClientError) as e:  # a second time: "already exists" (the product counts it as done)
        aws.ecr.put_image(repositoryName="web", imageManifest=pushed.manifest, imageManifestMediaType=pushed.media_type, imageTag="incompatible-latest")
    assert e.value.response["Error"]["Code"] == "ImageAlreadyExistsException"
    # Reading `latest` still answers `latest` (moto alone would say incompatible-latest).
    image = aws.ecr.batch_get_image(repositoryName="web", imageIds=[{"imageTag": "latest"}])["images"][0]
    assert image["imageId"]["imageTag"] == "latest"


def test_put_image_with_wrong_digest_is_refused(seed, aws):
    seed.repository("web")
    with pytest.raises(ClientError) as e:
        aws.ecr.put_image(repositoryName="web", imageManifest='{"schemaVersion":2}', imageManifestMediaType=DOCKER_MANIFEST, imageDigest="sha256:" + "1" * 64)
    assert e.value.response["Error"]["Code"] == "ImageDigestDoesNotMatchException"


def test_event_shape():
    ev = event("web", "latest", "sha256:" + "a" * 64)
    assert ev["detail-type"] == "ECR Image Action" and ev["source"] == "aws.ecr"
    assert ev["detail"] == {
        "result": "SUCCESS",
        "repository-name": "web",
        "image-digest": "sha256:" + "a" * 64,
        "action-type": "PUSH",
        "image-tag": "latest",
        "manifest-media-type": DOCKER_MANIFEST,
        "artifact-media-type": DOCKER_CONFIG,
    }
    assert "image-tag" not in event("web", None, "sha256:" + "a" * 64)["detail"]
    assert image_uri("web", "v1") == "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1"


def test_event_for_index_has_no_artifact_type(seed):
    pushed = seed.push_image("web", "v1", platforms=[("linux", "amd64"), ("linux", "arm64")], kind="oci")
    detail = event_for(pushed)["detail"]
    assert detail["manifest-media-type"] == OCI_INDEX and "artifact-media-type" not in detail
    assert event_for(pushed.children[0], tag="")["detail"]["image-tag"] == ""


# ---------------------------------------------------------------------------- ECS
def test_ecs_fargate_service_and_task_definition(seed, aws):
    seed.cluster("prod")
    td = seed.task_definition("web", image_uri("web", "latest"), cpu_architecture="ARM64")
    seed.ecs_service("prod", "checkout", td, launch_type="FARGATE")

    arns = aws.ecs.list_services(cluster="prod")["serviceArns"]
    service = aws.ecs.describe_services(cluster="prod", services=arns)["services"][0]
    assert service["serviceName"] == "checkout" and service["launchType"] == "FARGATE"
    got = aws.ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert got["runtimePlatform"] == {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}
    assert got["containerDefinitions"][0]["image"] == image_uri("web", "latest")


def test_ecs_capacity_providers_and_external(seed, aws):
    seed.cluster("prod", capacity_providers=["FARGATE", "FARGATE_SPOT"], default_strategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}])
    td = seed.task_definition("web", image_uri("web"))
    seed.ecs_service("prod", "spot", td, capacity_provider_strategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}])
    seed.ecs_service("prod", "by-default", td, launch_type=None)
    seed.cluster("edge")
    seed.ecs_service("edge", "ext", seed.task_definition("edge", image_uri("web"), requires=["EXTERNAL"]), launch_type="EXTERNAL")
    seed.asg_capacity_provider("graviton-asg")
    seed.cluster("graviton")
    seed.ecs_service("graviton", "asg", seed.task_definition("g", image_uri("web"), requires=["EC2"]), capacity_provider_strategy=[{"capacityProvider": "graviton-asg", "weight": 1}])

    def describe(cluster: str) -> dict:
        arns = aws.ecs.list_services(cluster=cluster)["serviceArns"]
        return {s["serviceName"]: s for s in aws.ecs.describe_services(cluster=cluster, services=arns)["services"]}

    prod = describe("prod")
    for name in ("spot", "by-default"):  # a strategy, no launch type: what ECS reports
        assert "launchType" not in prod[name]
        assert prod[name]["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert describe("edge")["ext"]["launchType"] == "EXTERNAL"
    assert describe("graviton")["asg"]["capacityProviderStrategy"][0]["capacityProvider"] == "graviton-asg"


def test_ecs_container_instance_architectures(seed, aws):
    seed.cluster("graviton")
    seed.cluster("mixed")
    arm = seed.container_instance("graviton", "arm64")
    seed.container_instance("mixed", "x86_64")
    seed.container_instance("mixed", "arm64")
    constraint = [{"type": "memberOf", "expression": "attribute:ecs.cpu-architecture == arm64"}]
    td = seed.task_definition("web", image_uri("web"), requires=["EC2"], placement_constraints=constraint)
    seed.ecs_service("mixed", "pinned", td, launch_type="EC2", placement_constraints=constraint)

    got = aws.ecs.list_attributes(cluster="graviton", targetType="container-instance", attributeName="ecs.cpu-architecture")["attributes"]
    assert [(a["targetId"], a["value"]) for a in got] == [(arm, "arm64")]
    mixed = aws.ecs.list_attributes(cluster="arn:aws:ecs:us-east-1:123456789012:cluster/mixed", targetType="container-instance", attributeName="ecs.cpu-architecture")
    assert sorted(a["value"] for a in mixed["attributes"]) == ["arm64", "x86_64"]
    only_arm = aws.ecs.list_attributes(cluster="mixed", targetType="container-instance", attributeName="ecs.cpu-architecture", attributeValue="arm64")
    assert len(only_arm["attributes"]) == 1
    # The fallback path: ListContainerInstances + DescribeContainerInstances carry it too.
    arns = aws.ecs.list_container_instances(cluster="graviton")["containerInstanceArns"]
    described = aws.ecs.describe_container_instances(cluster="graviton", containerInstances=arns)["containerInstances"]
    attrs = {a["name"]: a.get("value") for a in described[0]["attributes"]}
    assert attrs["ecs.cpu-architecture"] == "arm64" and attrs["ecs.os-type"] == "linux"
    service = aws.ecs.describe_services(cluster="mixed", services=["pinned"])["services"][0]
    assert service["placementConstraints"] == constraint
    assert aws.ecs.describe_task_definition(taskDefinition=td)["taskDefinition"]["placementConstraints"] == constraint


def test_ecs_pages_like_ecs(seed, aws):
    seed.cluster("prod")
    td = seed.task_definition("web", image_uri("web"))
    for i in range(12):
        seed.ecs_service("prod", f"svc-{i:02}", td)
    first = aws.ecs.list_services(cluster="prod")
    assert len(first["serviceArns"]) == 10 and first["nextToken"]
    rest = aws.ecs.list_services(cluster="prod", nextToken=first["nextToken"])
    assert len(rest["serviceArns"]) == 2 and "nextToken" not in rest
    paged = [a for page in aws.ecs.get_paginator("list_services").paginate(cluster="prod") for a in page["serviceArns"]]
    assert len(set(paged)) == 12
    with pytest.raises(ClientError) as e:
        aws.ecs.describe_services(cluster="prod", services=paged[:11])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"


# ---------------------------------------------------------------------------- App Runner, Lambda
def test_apprunner_list_and_describe(seed, aws):
    for i in range(23):  # more than one page (MaxResults is at most 20)
        seed.apprunner_service(f"svc-{i}", image_uri("web", "latest"), auto_deploy=(i == 0))
    summaries, token = [], None
    while True:
        page = aws.apprunner.list_services(**({"NextToken": token} if token else {}))
        summaries += page["ServiceSummaryList"]
        token = page.get("NextToken")
        if not token:
            break
    assert len(summaries) == 23
    service = aws.apprunner.describe_service(ServiceArn=summaries[0]["ServiceArn"])["Service"]
    source = service["SourceConfiguration"]
    assert source["ImageRepository"] == {
        "ImageIdentifier": image_uri("web", "latest"),
        "ImageConfiguration": {"Port": "8080"},
        "ImageRepositoryType": "ECR",
    }
    assert source["AutoDeploymentsEnabled"] is True and service["Status"] == "RUNNING"
    with pytest.raises(ClientError) as e:
        aws.apprunner.describe_service(ServiceArn=summaries[0]["ServiceArn"] + "x")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_lambda_image_function(seed, aws):
    arn = seed.lambda_function("resizer", image_uri("web", "latest"), architecture="x86_64")
    listed = aws.lambda_.list_functions()["Functions"]
    assert [(f["FunctionArn"], f["PackageType"], f["Architectures"]) for f in listed] == [(arn, "Image", ["x86_64"])]
    got = aws.lambda_.get_function(FunctionName="resizer")
    assert got["Code"]["ImageUri"] == image_uri("web", "latest") and got["Code"]["RepositoryType"] == "ECR"
    assert got["Configuration"]["Architectures"] == ["x86_64"]


# ---------------------------------------------------------------------------- SNS -> SQS
def test_sns_json_message_reaches_queue_with_attributes(seed, aws):
    topic, queue = seed.alert_topic()
    aws.sns.publish(
        TopicArn=topic,
        Subject="web:latest is linux/arm64 only",
        MessageStructure="json",
        Message=json.dumps({"default": "plain text", "email": "mail text"}),
        MessageAttributes={"verdict": {"DataType": "String", "StringValue": "incompatible"}, "severity": {"DataType": "String", "StringValue": "high"}},
    )
    [envelope] = seed.received(queue, wait_seconds=1)
    assert envelope["Type"] == "Notification" and envelope["TopicArn"] == topic
    assert envelope["Subject"] == "web:latest is linux/arm64 only"
    assert envelope["Message"] == "plain text"  # an SQS subscriber gets the default body
    assert envelope["MessageAttributes"]["verdict"] == {"Type": "String", "Value": "incompatible"}
    assert seed.received(queue) == []


# ---------------------------------------------------------------------------- controls
def test_fault_switch_throttles_then_recovers(seed, aws, emulator):
    seed.cluster("prod")
    seed.cluster("staging")
    emulator.add_fault(target="ecs:DescribeClusters", type="ThrottlingException", status=400, count=2, match="staging")
    assert aws.ecs.describe_clusters(clusters=["prod"])["clusters"][0]["clusterName"] == "prod"  # no match
    for _ in range(2):
        with pytest.raises(ClientError) as e:
            aws.ecs.describe_clusters(clusters=["staging"])
        assert e.value.response["Error"]["Code"] == "ThrottlingException"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert aws.ecs.describe_clusters(clusters=["staging"])["clusters"][0]["clusterName"] == "staging"


def test_fault_switch_over_http_for_each_protocol(aws, emulator):
    def fault(spec: dict) -> None:
        assert _http(f"{emulator.url}/_standin/faults", "POST", json.dumps(spec).encode())[0] == 200

    fault({"target": "AppRunner.*", "status": 400, "type": "AccessDeniedException", "count": 1})
    with pytest.raises(ClientError) as e:
        aws.apprunner.list_services()
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    fault({"target": "sns", "status": 403, "type": "AuthorizationError"})  # query protocol (XML)
    with pytest.raises(ClientError) as e:
        aws.sns.list_topics()
    assert e.value.response["Error"]["Code"] == "AuthorizationError"
    fault({"target": "lambda:ListFunctions", "status": 429, "type": "TooManyRequestsException"})  # REST JSON
    with pytest.raises(ClientError) as e:
        aws.lambda_.list_functions()
    assert e.value.response["Error"]["Code"] == "TooManyRequestsException"
    fault({"target": "ecr", "status": 500, "count": -1})
    for _ in range(2):
        with pytest.raises(ClientError) as e:
            aws.ecr.describe_repositories()
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert _http(f"{emulator.url}/_standin/faults", "DELETE")[0] == 200
    assert aws.ecr.describe_repositories()["repositories"] == []


def test_fault_drop_looks_unreachable(aws, emulator):
    emulator.add_fault(target="apprunner", drop=True)
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        aws.apprunner.list_services()
    assert aws.apprunner.list_services()["ServiceSummaryList"] == []


def test_call_counter_latency_and_journal(seed, aws, emulator):
    seed.push_image("web", "latest")
    assert _http(f"{emulator.url}/_standin/calls", "DELETE")[0] == 200
    aws.ecr.batch_get_image(repositoryName="web", imageIds=[{"imageTag": "latest"}], acceptedMediaTypes=ALL_MANIFEST_TYPES)
    aws.ecs.list_clusters()
    aws.ecs.list_clusters()
    aws.lambda_.list_functions()
    aws.sns.list_topics()
    calls = json.loads(_http(f"{emulator.url}/_standin/calls")[1])
    assert calls == {"ecr:BatchGetImage": 1, "ecs:ListClusters": 2, "lambda:ListFunctions": 1, "sns:ListTopics": 1}
    [req] = emulator.requests("ecr:BatchGetImage")
    assert req["body"]["acceptedMediaTypes"] == ALL_MANIFEST_TYPES  # tests can check what was sent

    assert _http(f"{emulator.url}/_standin/latency", "POST", b'{"ms": 100}')[0] == 200
    start = time.monotonic()
    aws.ecs.list_clusters()
    assert time.monotonic() - start >= 0.1
    emulator.set_latency(0)


def test_reset_clears_everything(seed, aws, emulator):
    seed.push_image("web", "latest")
    seed.apprunner_service("svc", image_uri("web"))
    emulator.add_fault(target="ecs", count=-1)
    emulator.reset()
    assert aws.ecr.describe_repositories()["repositories"] == []
    assert aws.apprunner.list_services()["ServiceSummaryList"] == []
    assert aws.ecs.list_clusters()["clusterArns"] == []  # fault gone too
    assert emulator.get_calls() == {"ecr:DescribeRepositories": 1, "apprunner:ListServices": 1, "ecs:ListClusters": 1}


def test_emulator_binds_loopback_only(emulator):
    assert emulator.host == "127.0.0.1" and emulator.port > 0
    with socket.create_connection((emulator.host, emulator.port), timeout=2):
        pass


# ---------------------------------------------------------------------------- Lambda Runtime API
def test_runtime_api_round_trip():
    """A tiny Python stand-in for the binary's runtime loop, to prove the Runtime API emulator."""
    api = RuntimeApi()
    try:
        first, second = api.invoke({"n": 1}), api.invoke({"n": 2})
        base = f"http://{api.address}/2018-06-01/runtime"
        for inv, outcome in ((first, "response"), (second, "error")):
            with urllib.request.urlopen(f"{base}/invocation/next", timeout=5) as resp:
                request_id = resp.headers["Lambda-Runtime-Aws-Request-Id"]
                assert int(resp.headers["Lambda-Runtime-Deadline-Ms"]) > time.time() * 1000
                assert resp.headers["Lambda-Runtime-Invoked-Function-Arn"].startswith("arn:aws:lambda:")
                assert resp.headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
                event_doc = json.loads(resp.read())
            assert request_id == inv.request_id
            body = json.dumps({"echo": event_doc} if outcome == "response" else {"errorType": "Boom", "errorMessage": "no"}).encode()
            req = urllib.request.Request(f"{base}/invocation/{request_id}/{outcome}", data=body, method="POST")
            req.add_header("Lambda-Runtime-Function-Error-Type", "Unhandled")
            assert urllib.request.urlopen(req, timeout=5).status == 202
        assert first.ok and first.response == {"echo": {"n": 1}}
        assert not second.ok and second.error["errorType"] == "Boom"
    finally:
        api.stop()


FAKE_RUNTIME = '''
import json, os, sys, urllib.request
# What lambda_runtime 1.5 insists on at start (it panics without these).
for var in ("AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION"):
    assert os.environ[var], var
int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
base = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
while True:
    with urllib.request.urlopen(base + "/invocation/next") as resp:
        rid = resp.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(resp.read())
    outcome = "error" if event.get("fail") else "response"
    body = {"errorType": "Fail", "errorMessage": "asked to"} if event.get("fail") else {"verdict": "skipped", "n": event["n"], "endpoint": os.environ["AWS_ENDPOINT_URL"]}
    urllib.request.urlopen(urllib.request.Request(base + "/invocation/" + rid + "/" + outcome, data=json.dumps(body).encode(), method="POST"))
    print("handled", rid, file=sys.stderr, flush=True)
'''


def test_run_lambda_drives_a_runtime_process(tmp_path, emulator):
    """run_as_lambda with a Python stand-in for the binary: env vars, event feeding, collection."""
    import sys

    from binary import run_as_lambda

    script = tmp_path / "bootstrap"
    script.write_text(f"#!{sys.executable}\n{FAKE_RUNTIME}")
    script.chmod(0o755)
    run = run_as_lambda(str(script), emulator.url, [{"n": 1}, {"fail": True}, {"n": 3}], timeout=10)
    assert run.init_error is None and run.exit_code is None  # still polling when killed, as in Lambda
    ok1, failed, ok3 = run.invocations
    assert ok1.response == {"verdict": "skipped", "n": 1, "endpoint": emulator.url}
    assert failed.error["errorType"] == "Fail" and not failed.ok
    assert ok3.ok and ok3.response["n"] == 3
    assert run.stderr.count("handled") == 3
