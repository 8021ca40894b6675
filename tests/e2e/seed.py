"""Seeding helpers: put the world a test needs into the emulator, the way real AWS would hold it.

Images are built for real: a config blob (JSON with architecture/os/variant), its sha256, a Docker
v2 schema 2 or OCI manifest pointing at it, and for multi-platform pushes an index whose children
are pushed first, untagged, as `docker buildx` does. Digests are sha256 of the exact manifest bytes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

import boto3
from botocore.config import Config

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
ALL_MANIFEST_TYPES = [DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX]

Platform = tuple  # ("linux", "arm64", None) or ("linux", "arm", "v7")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def registry_host(account: str = ACCOUNT, region: str = REGION) -> str:
    return f"{account}.dkr.ecr.{region}.amazonaws.com"


def image_uri(repo: str, tag: str | None = None, digest: str | None = None, account: str = ACCOUNT, region: str = REGION) -> str:
    """`ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO[:TAG|@DIGEST]`, as task definitions hold it."""
    ref = f"{registry_host(account, region)}/{repo}"
    if digest:
        return f"{ref}@{digest}"
    return f"{ref}:{tag}" if tag else ref


@dataclass
class Pushed:
    """One manifest as stored in ECR (an index carries its pushed children)."""

    repository: str
    tag: str | None
    digest: str
    media_type: str
    manifest: str  # the exact bytes ECR holds, as text
    platform: str | None = None  # "linux/arm64" for a single manifest
    config_digest: str | None = None
    children: list["Pushed"] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return image_uri(self.repository, self.tag)

    @property
    def uri_by_digest(self) -> str:
        return image_uri(self.repository, digest=self.digest)


class Clients:
    """boto3 clients pointed at the emulator, made on first use: `aws.ecr`, `aws.client("lambda")`."""

    def __init__(self, endpoint: str, region: str = REGION):
        self.endpoint, self.region = endpoint, region
        self._cache: dict[str, Any] = {}
        # No retries: a test that injects one fault sees it, instead of boto3 quietly retrying past it.
        self._config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30)

    def client(self, service: str) -> Any:
        if service not in self._cache:
            self._cache[service] = boto3.client(
                service,
                endpoint_url=self.endpoint,
                region_name=self.region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=self._config,
            )
        return self._cache[service]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.client(name.rstrip("_"))  # aws.lambda_ -> "lambda"


class Seeder:
    """The seeding helpers. One per test (the emulator is reset between tests)."""

    def __init__(self, emulator: Any, aws: Clients):
        self.emulator, self.aws = emulator, aws
        self._lambda_role: str | None = None

    # ------------------------------------------------------------------ ECR
    def repository(self, name: str) -> str:
        """Create the repository if needed; returns its URI."""
        try:
            self.aws.ecr.create_repository(repositoryName=name)
        except self.aws.ecr.exceptions.RepositoryAlreadyExistsException:
            pass
        return f"{registry_host()}/{name}"

    def put_manifest(self, repo: str, manifest: str | dict, media_type: str, tag: str | None = None) -> Pushed:
        """PutImage of exact manifest text (a fixture, a schema 1, an artifact...)."""
        text = manifest if isinstance(manifest, str) else _dumps(manifest)
        self.repository(repo)
        kwargs: dict[str, Any] = {"repositoryName": repo, "imageManifest": text, "imageManifestMediaType": media_type}
        if tag:
            kwargs["imageTag"] = tag
        image = self.aws.ecr.put_image(**kwargs)["image"]
        digest = sha256(text.encode())
        assert image["imageId"]["imageDigest"] == digest, "ECR digest must be sha256 of the manifest bytes"
        return Pushed(repo, tag, digest, media_type, text)

    def push_image(
        self,
        repo: str,
        tag: str | None,
        platforms: Iterable[Platform] = (("linux", "arm64", None),),
        kind: str = "docker",
        index: bool = False,
        attestations: bool = False,
        os_version: str | None = None,
    ) -> Pushed:
        """Push an image like `docker push` / `docker buildx build --push` would.

        One platform and index=False: a single manifest, tagged. Otherwise a manifest list (docker)
        or image index (oci): each platform's manifest pushed untagged first, then the index with
        the tag. attestations=True adds buildx's provenance manifests (platform unknown/unknown,
        annotation vnd.docker.reference.type=attestation-manifest) and, like buildx, makes it OCI.
        os_version goes into each config's `os.version` (Windows images carry their build there).
        """
        platforms = [tuple(p) + (None,) * (3 - len(p)) for p in platforms]
        if attestations:
            kind, index = "oci", True
        if len(platforms) == 1 and not index:
            return self._push_single(repo, tag, platforms[0], kind, os_version)

        children = [self._push_single(repo, None, p, kind, os_version) for p in platforms]
        descriptors = []
        for child, (os_, arch, variant) in zip(children, platforms):
            platform = {"architecture": arch, "os": os_}
            if variant:
                platform["variant"] = variant
            descriptors.append({"mediaType": child.media_type, "digest": child.digest, "size": len(child.manifest.encode()), "platform": platform})
        if attestations:
            for child in list(children):
                att = self._push_attestation(repo, child)
                children.append(att)
                descriptors.append({
                    "mediaType": OCI_MANIFEST,
                    "digest": att.digest,
                    "size": len(att.manifest.encode()),
                    "annotations": {
                        "vnd.docker.reference.digest": child.digest,
                        "vnd.docker.reference.type": "attestation-manifest",
                    },
                    "platform": {"architecture": "unknown", "os": "unknown"},
                })
        media_type = OCI_INDEX if kind == "oci" else DOCKER_LIST
        doc = {"schemaVersion": 2, "mediaType": media_type, "manifests": descriptors}
        pushed = self.put_manifest(repo, doc, media_type, tag)
        pushed.children = children
        return pushed

    def _push_single(self, repo: str, tag: str | None, platform: Platform, kind: str, os_version: str | None = None) -> Pushed:
        os_, arch, variant = platform
        config: dict[str, Any] = {"architecture": arch, "os": os_}
        if variant:
            config["variant"] = variant
        if os_version:
            config["os.version"] = os_version
        layer = sha256(secrets.token_bytes(16))  # never read by the product; makes digests distinct
        config.update({
            "created": "2025-01-01T00:00:00Z",
            "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Entrypoint": ["/usr/local/bin/docker-entrypoint.sh"]},
            "rootfs": {"type": "layers", "diff_ids": [layer]},
        })
        config_bytes = _dumps(config).encode()
        config_digest = self.emulator.seed_blob(config_bytes)
        oci = kind == "oci"
        media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
        doc = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": OCI_CONFIG if oci else DOCKER_CONFIG, "size": len(config_bytes), "digest": config_digest},
            "layers": [{"mediaType": OCI_LAYER if oci else DOCKER_LAYER, "size": 1024, "digest": layer}],
        }
        pushed = self.put_manifest(repo, doc, media_type, tag)
        pushed.platform = "/".join(p for p in platform if p)
        pushed.config_digest = config_digest
        return pushed

    def push_with_config(
        self,
        repo: str,
        tag: str | None,
        config: bytes,
        served: bytes | None = None,
        declared_size: int | None = None,
        kind: str = "docker",
    ) -> Pushed:
        """A single manifest whose config descriptor names sha256(config), for blob trouble:
        `served` is what the blob URL hands out under that digest instead (a wrong blob), and
        `declared_size` is the size the descriptor claims (default: the true one)."""
        digest = sha256(config)
        self.emulator.seed_blob(config if served is None else served, digest)
        oci = kind == "oci"
        media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
        layer = sha256(secrets.token_bytes(16))
        doc = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": OCI_CONFIG if oci else DOCKER_CONFIG, "size": len(config) if declared_size is None else declared_size, "digest": digest},
            "layers": [{"mediaType": OCI_LAYER if oci else DOCKER_LAYER, "size": 1024, "digest": layer}],
        }
        pushed = self.put_manifest(repo, doc, media_type, tag)
        pushed.config_digest = digest
        return pushed

    def push_helm_chart(self, repo: str, tag: str, name: str = "web", version: str = "0.1.0") -> Pushed:
        """What `helm push chart.tgz oci://...` stores: an OCI manifest whose config is the chart's
        Chart.yaml as JSON (media type application/vnd.cncf.helm.config.v1+json) and one layer,
        the chart archive."""
        chart = _dumps({"apiVersion": "v2", "name": name, "version": version, "type": "application"}).encode()
        archive = secrets.token_bytes(64)  # stands for the .tgz; never read
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": HELM_CONFIG, "digest": self.emulator.seed_blob(chart), "size": len(chart)},
            "layers": [{"mediaType": HELM_CHART, "digest": self.emulator.seed_blob(archive), "size": len(archive)}],
        }
        return self.put_manifest(repo, doc, OCI_MANIFEST, tag)

    def _push_attestation(self, repo: str, subject: Pushed) -> Pushed:
        # What buildx attaches for --provenance: an OCI manifest whose "image" is an in-toto statement.
        statement = _dumps({"_type": "https://in-toto.io/Statement/v0.1", "subject": [{"digest": {"sha256": subject.digest[7:]}}]}).encode()
        config = _dumps({"architecture": "unknown", "os": "unknown", "config": {}, "rootfs": {"type": "layers", "diff_ids": [sha256(statement)]}}).encode()
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": self.emulator.seed_blob(config), "size": len(config)},
            "layers": [{
                "mediaType": "application/vnd.in-toto+json",
                "digest": self.emulator.seed_blob(statement),
                "size": len(statement),
                "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"},
            }],
        }
        pushed = self.put_manifest(repo, doc, OCI_MANIFEST)
        pushed.platform = "unknown/unknown"
        return pushed

    def delete_image(self, repo: str, tag: str | None = None, digest: str | None = None) -> None:
        image_id = {"imageTag": tag} if tag else {"imageDigest": digest}
        self.aws.ecr.batch_delete_image(repositoryName=repo, imageIds=[image_id])

    def tags_of(self, repo: str, digest: str) -> list[str]:
        details = self.aws.ecr.describe_images(repositoryName=repo, imageIds=[{"imageDigest": digest}])["imageDetails"]
        return sorted(details[0].get("imageTags", [])) if details else []

    # ------------------------------------------------------------------ ECS
    def cluster(self, name: str, capacity_providers: list[str] | None = None, default_strategy: list[dict] | None = None) -> str:
        kwargs: dict[str, Any] = {"clusterName": name}
        if capacity_providers:
            kwargs["capacityProviders"] = capacity_providers
        if default_strategy:
            kwargs["defaultCapacityProviderStrategy"] = default_strategy
        return self.aws.ecs.create_cluster(**kwargs)["cluster"]["clusterArn"]

    def container_instance(self, cluster: str, arch: str = "x86_64", instance_type: str | None = None) -> str:
        """An EC2 instance of that architecture registered in the cluster, with the attribute the
        ECS agent sets: ecs.cpu-architecture = x86_64 | arm64."""
        ami = self._ecs_ami(arch)
        instance_type = instance_type or ("m7g.large" if arch == "arm64" else "m6i.large")
        instance = self.aws.ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType=instance_type)["Instances"][0]
        doc = json.dumps({"instanceId": instance["InstanceId"], "architecture": arch, "region": REGION})
        registered = self.aws.ecs.register_container_instance(
            cluster=cluster,
            instanceIdentityDocument=doc,
            attributes=[{"name": "ecs.cpu-architecture", "value": arch}, {"name": "ecs.os-type", "value": "linux"}],
        )
        return registered["containerInstance"]["containerInstanceArn"]

    def _ecs_ami(self, arch: str) -> str:
        images = self.aws.ec2.describe_images(Filters=[
            {"Name": "name", "Values": ["amzn2-ami-ecs-hvm-*"]},
            {"Name": "architecture", "Values": [arch]},
        ])["Images"]
        return images[0]["ImageId"]

    def asg_capacity_provider(self, name: str, arch: str = "arm64") -> str:
        """An Auto Scaling group capacity provider (EC2 capacity behind a strategy)."""
        asg = self.aws.autoscaling
        asg.create_launch_configuration(LaunchConfigurationName=f"{name}-lc", ImageId=self._ecs_ami(arch), InstanceType="m7g.large" if arch == "arm64" else "m6i.large")
        asg.create_auto_scaling_group(AutoScalingGroupName=f"{name}-asg", LaunchConfigurationName=f"{name}-lc", MinSize=0, MaxSize=2, AvailabilityZones=[f"{REGION}a"])
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[f"{name}-asg"])["AutoScalingGroups"][0]
        self.aws.ecs.create_capacity_provider(name=name, autoScalingGroupProvider={"autoScalingGroupArn": group["AutoScalingGroupARN"]})
        return name

    def task_definition(
        self,
        family: str,
        image: str,
        cpu_architecture: str | None = None,
        os_family: str = "LINUX",
        requires: Iterable[str] = ("FARGATE",),
        placement_constraints: list[dict] | None = None,
        extra_images: Iterable[str] = (),
    ) -> str:
        """cpu_architecture None = no runtimePlatform at all (Fargate then runs linux/amd64)."""
        requires = list(requires)
        containers = [{"name": "app", "image": image, "essential": True, "memory": 512}]
        containers += [{"name": f"sidecar{i}", "image": img, "essential": False, "memory": 128} for i, img in enumerate(extra_images)]
        kwargs: dict[str, Any] = {"family": family, "containerDefinitions": containers, "requiresCompatibilities": requires}
        if "FARGATE" in requires:
            kwargs.update(networkMode="awsvpc", cpu="256", memory="1024")
        if cpu_architecture:
            kwargs["runtimePlatform"] = {"cpuArchitecture": cpu_architecture, "operatingSystemFamily": os_family}
        if placement_constraints:
            kwargs["placementConstraints"] = placement_constraints
        return self.aws.ecs.register_task_definition(**kwargs)["taskDefinition"]["taskDefinitionArn"]

    def ecs_service(
        self,
        cluster: str,
        name: str,
        task_definition: str,
        launch_type: str | None = "FARGATE",
        capacity_provider_strategy: list[dict] | None = None,
        placement_constraints: list[dict] | None = None,
    ) -> str:
        """launch_type None and no strategy = the cluster's default capacity provider strategy."""
        kwargs: dict[str, Any] = {"cluster": cluster, "serviceName": name, "taskDefinition": task_definition, "desiredCount": 1}
        if capacity_provider_strategy:
            kwargs["capacityProviderStrategy"] = capacity_provider_strategy
        elif launch_type:
            kwargs["launchType"] = launch_type
        if placement_constraints:
            kwargs["placementConstraints"] = placement_constraints
        # No networkConfiguration: real ECS wants one for awsvpc, moto does not, the product never reads it.
        return self.aws.ecs.create_service(**kwargs)["service"]["serviceArn"]

    # ------------------------------------------------------------------ App Runner, Lambda
    def apprunner_service(self, name: str, image: str, auto_deploy: bool = True, status: str = "RUNNING") -> dict[str, Any]:
        return self.emulator.add_apprunner_service(name, image, auto_deploy=auto_deploy, status=status)

    def lambda_function(self, name: str, image: str, architecture: str = "x86_64") -> str:
        """A Lambda function with PackageType Image. moto needs an existing IAM role Lambda can assume."""
        if self._lambda_role is None:
            trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
            self._lambda_role = self.aws.iam.create_role(RoleName="epg-test-lambda", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        fn = self.aws.lambda_.create_function(
            FunctionName=name, Role=self._lambda_role, PackageType="Image", Code={"ImageUri": image}, Architectures=[architecture]
        )
        return fn["FunctionArn"]

    # ------------------------------------------------------------------ SNS -> SQS
    def alert_topic(self, name: str = "epg-alerts") -> tuple[str, str]:
        """An SNS topic with an SQS queue subscribed (envelope delivery, RawMessageDelivery false),
        so a test sees what any subscriber would receive. Returns (topic_arn, queue_url)."""
        topic = self.aws.sns.create_topic(Name=name)["TopicArn"]
        queue_url = self.aws.sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"]
        queue_arn = self.aws.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.aws.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "false"})
        return topic, queue_url

    def received(self, queue_url: str, wait_seconds: int = 0) -> list[dict[str, Any]]:
        """Every SNS envelope in the queue (Type, Subject, Message, MessageAttributes...), drained."""
        out = []
        while True:
            got = self.aws.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds).get("Messages", [])
            if not got:
                return out
            for message in got:
                out.append(json.loads(message["Body"]))
                self.aws.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            wait_seconds = 0


def event(
    repo: str,
    tag: str | None,
    digest: str,
    action: str = "PUSH",
    result: str = "SUCCESS",
    media_type: str | None = DOCKER_MANIFEST,
    artifact_media_type: str | None = None,
    account: str = ACCOUNT,
    region: str = REGION,
) -> dict[str, Any]:
    """The EventBridge envelope ECR sends for an image action ("ECR Image Action", source aws.ecr).

    tag None = the key is absent; "" = present and empty (both occur for untagged child pushes).
    artifact-media-type defaults to the config media type that goes with a single manifest.
    """
    detail: dict[str, Any] = {
        "result": result,
        "repository-name": repo,
        "image-digest": digest,
        "action-type": action,
    }
    if tag is not None:
        detail["image-tag"] = tag
    if media_type:
        detail["manifest-media-type"] = media_type
    if artifact_media_type is None:
        artifact_media_type = {DOCKER_MANIFEST: DOCKER_CONFIG, OCI_MANIFEST: OCI_CONFIG}.get(media_type or "")
    if artifact_media_type:
        detail["artifact-media-type"] = artifact_media_type
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": account,
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": detail,
    }


def event_for(pushed: Pushed, **kwargs: Any) -> dict[str, Any]:
    """The event ECR emits for this push: tag and media type taken from it unless given."""
    kwargs.setdefault("media_type", pushed.media_type)
    return event(pushed.repository, kwargs.pop("tag", pushed.tag), pushed.digest, **kwargs)


def _dumps(doc: Any) -> str:
    # Pretty, like what docker/buildx push: the digest covers these exact bytes, spaces included.
    return json.dumps(doc, indent=3)
