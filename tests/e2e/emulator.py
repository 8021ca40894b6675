"""Local AWS emulator for the end-to-end tests: moto's server plus a thin stand-in in front of it.

One HTTP server on a free loopback port. Every request goes through `StandIn` (a WSGI middleware);
what moto serves correctly is forwarded to moto's own WSGI app unchanged, in the same process.

What is moto (real, not written here): ECR repositories/images (PutImage, BatchGetImage,
DescribeImages, BatchDeleteImage), ECS clusters/task definitions/services/container instances/
attributes, EC2 instances (needed to register container instances), IAM, Lambda functions,
SNS topics/subscriptions/publish, SQS queues, STS.

What the stand-in answers itself, and why:
  * ECR GetDownloadUrlForLayer: moto raises NotImplementedError. We return a URL to this same server
    (`/_standin/blobs/<digest>?X-Amz-Signature=<secret>`) for blobs the test seeded, and serve GET
    on it, like ECR's pre-signed S3 URL. A wrong signature gets 403, as S3 would.
  * App Runner ListServices / DescribeService: moto has no App Runner at all. Services are seeded
    by the test (`add_apprunner_service` / `POST /_standin/apprunner/services`).
  * ECR PutImage *digest*: moto computes the digest as sha256 of the concatenated layer digests
    (and a random one for an index), not sha256 of the manifest bytes. When the request carries no
    `imageDigest` we add the real one before forwarding; when it carries a wrong one we answer
    `ImageDigestDoesNotMatchException` like ECR.
  * ECR BatchGetImage `imageId`: moto answers with the image's *last added* tag, so after a marker
    tag is added a read of `latest` comes back labelled `incompatible-latest`. ECR echoes the
    requested id; we patch the answer for single-id requests (the only kind the product makes).
  * ECS CreateService / DescribeServices: moto drops `capacityProviderStrategy`,
    `placementConstraints` and `placementStrategy`, rejects launch type EXTERNAL and always reports
    a launch type (EC2 by default, even when a capacity provider strategy was given). We strip
    those fields before forwarding, remember them per service ARN and put them back in the answers;
    a service created with neither launchType nor strategy gets the cluster's default strategy,
    as ECS does.
  * ECS ListAttributes: moto keeps container-instance attributes (PutAttributes works, and
    DescribeContainerInstances returns them), but its ListAttributes filters `attributeName`
    together with `attributeValue` (asking for a name alone returns nothing) and its cluster
    filter is a no-op (every cluster's instances come back). We forward without those filters
    and filter the answer ourselves: name, value, and membership of the cluster (ListContainerInstances).
  * ECS ListServices / ListClusters / ListContainerInstances: moto returns everything in one page;
    ECS pages them (ListServices 10 at a time by default), so we page moto's answer the same way.
    DescribeServices refuses more than 10 services, as ECS does (moto takes any number).
  * ECS RegisterContainerInstance: moto ignores the `attributes` the ECS agent registers with
    (ecs.cpu-architecture among them); we apply them with PutAttributes right after.
  Everything else: forwarded unchanged.

Test controls on the same port (JSON bodies; not counted as AWS calls, except the blob GET):
  PUT    /_standin/blobs/<digest>        body = blob bytes (digest may differ from sha256 on purpose)
  GET    /_standin/blobs/<digest>?X-Amz-Signature=..   what GetDownloadUrlForLayer points at;
                                          counted as `s3:GetObject`, subject to faults and latency
  POST   /_standin/apprunner/services    {"name", "image", "auto_deploy", "status", "region",
                                          "repository_type"} -> the service
  POST   /_standin/faults                {"target": pattern, "status": 400, "type": "ThrottlingException",
                                          "message", "count": 1 (-1 = forever), "match": substring of
                                          body/path/query, "drop": true = close the connection unanswered}
  DELETE /_standin/faults                clear them
  POST   /_standin/latency               {"ms": 20}, added before every AWS request
  GET    /_standin/calls                 {"ecs:DescribeServices": 12, ...}; DELETE resets (and the journal)
  GET    /_standin/requests              [{"op", "body"}...] journal of AWS requests; DELETE resets
  POST   /_standin/reset                 clear all stand-in state (moto's own: POST /moto-api/reset,
                                          which also clears ours)

Operation names (calls, journal, fault targets) are "<signing name>:<Operation>", e.g.
`ecr:BatchGetImage`, `sns:Publish`, `lambda:GetFunction`, `s3:GetObject` for blob downloads.
A fault `target` is an fnmatch pattern tried against that name, the X-Amz-Target header and the
bare service name: "ecs:DescribeServices", "AppRunner.*", "ecs", "lambda:*" all work.

Run standalone (for benchmarks or manual poking): `python tests/e2e/emulator.py [--port N]`.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import json
import logging
import re
import secrets
import socket
import threading
import time
import uuid
from collections import Counter
from http import HTTPStatus
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, urlencode

from werkzeug.serving import WSGIRequestHandler, make_server

ACCOUNT_ID = "123456789012"  # moto's default account
DEFAULT_REGION = "us-east-1"

# X-Amz-Target prefix -> signing name, for unsigned requests (signed ones carry it in the scope).
TARGET_PREFIXES = {
    "AmazonEC2ContainerRegistry_V20150921": "ecr",
    "AmazonEC2ContainerServiceV20141113": "ecs",
    "AppRunner": "apprunner",
    "AmazonSQS": "sqs",
}
ECR = "AmazonEC2ContainerRegistry_V20150921."
ECS = "AmazonEC2ContainerServiceV20141113."

StartResponse = Callable[..., Any]



def call_wsgi(app: Callable[..., Any], environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Calls a WSGI app in-process and returns (status, headers, body)."""
    captured: dict[str, Any] = {}

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        captured["status"], captured["headers"] = status, list(headers)
        return lambda _data: None

    chunks = app(environ, capture)
    try:
        body = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return captured["status"], captured["headers"], body

class AwsError(Exception):
    """An AWS error answer: rendered in the wire format of the request's protocol."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Request:
    """What the middleware needs to know about one AWS request, parsed once."""

    def __init__(self, environ: dict[str, Any]):
        self.environ = environ
        self.method = environ["REQUEST_METHOD"]
        self.path = environ.get("PATH_INFO", "")
        self.query = environ.get("QUERY_STRING", "")
        self.body = _read_body(environ)
        self.target = environ.get("HTTP_X_AMZ_TARGET", "")
        self.content_type = environ.get("CONTENT_TYPE", "")
        self.service, self.region = _signing_scope(environ.get("HTTP_AUTHORIZATION", ""))
        if not self.service and self.target:
            self.service = TARGET_PREFIXES.get(self.target.split(".")[0], self.target.split(".")[0].lower())
        self.protocol, self.operation = self._classify()

    def _classify(self) -> tuple[str, str]:
        if self.target:
            return "json", self.target.split(".", 1)[-1]
        form = parse_qs(self.query)
        if "x-www-form-urlencoded" in self.content_type:
            form.update(parse_qs(self.body.decode("utf-8", "replace")))
        if "Action" in form:
            return "query", form["Action"][0]
        return "rest-json", _rest_operation(self.service, self.method, self.path)

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}"

    def json(self) -> dict[str, Any]:
        return json.loads(self.body or b"{}")


class Fault:
    def __init__(self, spec: dict[str, Any]):
        self.target = spec.get("target", "*")
        self.status = int(spec.get("status", 400))
        default = "ThrottlingException" if self.status < 500 else "InternalFailure"
        self.code = spec.get("type") or default
        self.message = spec.get("message") or f"injected {self.code}"
        self.count = int(spec.get("count", 1))  # -1 = forever
        self.match = spec.get("match")
        self.drop = bool(spec.get("drop", False))

    def matches(self, req: Request) -> bool:
        names = [req.name, req.target, req.service]
        if not any(n and fnmatch.fnmatchcase(n, self.target) for n in names):
            return False
        if self.match:
            haystack = req.body.decode("utf-8", "replace") + req.path + req.query
            return self.match in haystack
        return True


class StandIn:
    """WSGI middleware: stand-ins + test controls in front of moto's WSGI app."""

    def __init__(self, moto_app: Callable[..., Iterable[bytes]]):
        self.moto_app = moto_app
        self.lock = threading.Lock()
        self.url_secret = secrets.token_hex(16)  # tests assert it never leaks into logs
        self.reset()

    # ---------------------------------------------------------------- state, Python API
    def reset(self) -> None:
        with self.lock:
            self.blobs: dict[str, bytes] = {}
            self.apprunner: dict[str, dict[str, Any]] = {}  # arn -> service, insertion-ordered
            self.ecs_extras: dict[str, dict[str, Any]] = {}  # service arn -> fields moto drops
            self.faults: list[Fault] = []
            self.latency_ms = 0
            self.calls: Counter[str] = Counter()
            self.journal: list[dict[str, Any]] = []

    def seed_blob(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or "sha256:" + hashlib.sha256(data).hexdigest()
        with self.lock:
            self.blobs[digest] = data
        return digest

    def add_apprunner_service(
        self,
        name: str,
        image: str,
        auto_deploy: bool = True,
        status: str = "RUNNING",
        region: str = DEFAULT_REGION,
        repository_type: str = "ECR",
    ) -> dict[str, Any]:
        service_id = uuid.uuid4().hex
        now = time.time()
        arn = f"arn:aws:apprunner:{region}:{ACCOUNT_ID}:service/{name}/{service_id}"
        # Every member the API model marks required is present: the Rust SDK refuses to build
        # a `Service` without them.
        service = {
            "ServiceName": name,
            "ServiceId": service_id,
            "ServiceArn": arn,
            "ServiceUrl": f"{service_id[:10]}.{region}.awsapprunner.com",
            "CreatedAt": now,
            "UpdatedAt": now,
            "Status": status,
            "SourceConfiguration": {
                "ImageRepository": {
                    "ImageIdentifier": image,
                    "ImageConfiguration": {"Port": "8080"},
                    "ImageRepositoryType": repository_type,
                },
                "AutoDeploymentsEnabled": auto_deploy,
                "AuthenticationConfiguration": {
                    "AccessRoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/service-role/AppRunnerECRAccessRole"
                },
            },
            "InstanceConfiguration": {"Cpu": "1024", "Memory": "2048"},
            "AutoScalingConfigurationSummary": {
                "AutoScalingConfigurationArn": f"arn:aws:apprunner:{region}:{ACCOUNT_ID}:autoscalingconfiguration/DefaultConfiguration/1/00000000000000000000000000000001",
                "AutoScalingConfigurationName": "DefaultConfiguration",
                "AutoScalingConfigurationRevision": 1,
            },
            "NetworkConfiguration": {
                "EgressConfiguration": {"EgressType": "DEFAULT"},
                "IngressConfiguration": {"IsPubliclyAccessible": True},
                "IpAddressType": "IPV4",
            },
            "_region": region,  # ours, stripped from answers
        }
        with self.lock:
            self.apprunner[arn] = service
        return _public(service)

    def add_fault(self, **spec: Any) -> None:
        with self.lock:
            self.faults.append(Fault(spec))

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def set_latency(self, ms: int) -> None:
        self.latency_ms = int(ms)

    def get_calls(self) -> dict[str, int]:
        with self.lock:
            return dict(self.calls)

    def reset_calls(self) -> None:
        with self.lock:
            self.calls.clear()
            self.journal.clear()

    def requests(self, name: str | None = None) -> list[dict[str, Any]]:
        """Journal of AWS requests: [{"op": "ecr:BatchGetImage", "body": {...} or str}]."""
        with self.lock:
            return [r for r in self.journal if name is None or fnmatch.fnmatchcase(r["op"], name)]

    # ---------------------------------------------------------------- WSGI entry
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_standin/") and not path.startswith("/_standin/blobs/"):
            return self._control(environ, start_response)
        if path.startswith("/moto-api"):
            if path.rstrip("/") == "/moto-api/reset":
                self.reset()
            return self.moto_app(environ, start_response)

        req = Request(environ)
        if path.startswith("/_standin/blobs/"):
            req.service, req.operation, req.protocol = "s3", "GetObject", "s3"
        with self.lock:
            self.calls[req.name] += 1
            self.journal.append({"op": req.name, "body": _journal_body(req)})
            fault = next((f for f in self.faults if f.count != 0 and f.matches(req)), None)
            if fault and fault.count > 0:
                fault.count -= 1
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        try:
            if fault and fault.drop:
                return _drop_connection(environ, start_response)
            if fault:
                raise AwsError(fault.status, fault.code, fault.message)
            handler = self._handlers().get(req.target or req.name)
            if handler:
                return handler(req, start_response)
            return self._forward(req, start_response)
        except AwsError as e:
            return _error(req, e, start_response)

    def _handlers(self) -> dict[str, Callable[[Request, StartResponse], Iterable[bytes]]]:
        return {
            "s3:GetObject": self._get_blob,
            ECR + "GetDownloadUrlForLayer": self._get_download_url,
            ECR + "PutImage": self._put_image,
            ECR + "BatchGetImage": self._batch_get_image,
            ECS + "CreateService": self._ecs_create_service,
            ECS + "DescribeServices": self._ecs_describe_services,
            ECS + "ListAttributes": self._ecs_list_attributes,
            ECS + "RegisterContainerInstance": self._ecs_register_container_instance,
            ECS + "ListServices": self._ecs_paginated,
            ECS + "ListClusters": self._ecs_paginated,
            ECS + "ListContainerInstances": self._ecs_paginated,
            "AppRunner.ListServices": self._apprunner_list,
            "AppRunner.DescribeService": self._apprunner_describe,
        }

    # ---------------------------------------------------------------- moto plumbing
    def _forward(self, req: Request, start_response: StartResponse) -> Iterable[bytes]:
        req.environ["wsgi.input"] = io.BytesIO(req.body)
        return self.moto_app(req.environ, start_response)

    def _call_moto(self, req: Request, target: str | None = None, payload: Any = None) -> tuple[str, list, bytes]:
        """Call moto in-process with the same signature (so the same account and region)."""
        environ = dict(req.environ)
        body = req.body if payload is None else json.dumps(payload).encode()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        if target:
            environ["HTTP_X_AMZ_TARGET"] = target
        return call_wsgi(self.moto_app, environ)

    def _moto_json(self, req: Request, target: str | None = None, payload: Any = None) -> dict[str, Any]:
        """A JSON-protocol call to moto; moto's errors are re-raised as the same AWS error."""
        status, _headers, data = self._call_moto(req, target, payload)
        doc = json.loads(data or b"{}")
        if not status.startswith("2"):
            code = str(doc.get("__type", "ServerException")).split("#")[-1]
            raise AwsError(int(status.split()[0]), code, doc.get("message") or doc.get("Message", ""))
        return doc

    # ---------------------------------------------------------------- ECR
    def _get_download_url(self, req: Request, start_response: StartResponse) -> Iterable[bytes]:
        params = req.json()
        repo, digest = params.get("repositoryName"), params.get("layerDigest")
        if not repo or not digest:
            raise AwsError(400, "InvalidParameterException", "repositoryName and layerDigest are required")
        # The repository must exist in moto, in the caller's account: same error as ECR otherwise.
        lookup = {"repositoryNames": [repo]}
        if params.get("registryId"):
            lookup["registryId"] = params["registryId"]
        self._moto_json(req, ECR + "DescribeRepositories", lookup)
        with self.lock:
            known = digest in self.blobs
        if not known:
            raise AwsError(
                400,
                "LayersNotFoundException",
                f"The specified layer {digest} could not be found in repository {repo}.",
            )
        host = req.environ.get("HTTP_HOST", "127.0.0.1")
        query = urlencode({"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Expires": "3600", "X-Amz-Signature": self.url_secret})
        url = f"http://{host}/_standin/blobs/{digest}?{query}"
        return _json(start_response, req, {"downloadUrl": url, "layerDigest": digest})

    def _get_blob(self, req: Request, start_response: StartResponse) -> Iterable[bytes]:
        if req.method != "GET":
            raise AwsError(405, "MethodNotAllowed", "blobs are seeded with PUT /_standin/blobs/<digest> outside the AWS path")
        digest = req.path.rsplit("/", 1)[-1]
        if parse_qs(req.query).get("X-Amz-Signature", [""])[0] != self.url_secret:
            raise AwsError(403, "AccessDenied", "Request has expired or signature does not match")
        with self.lock:
            data = self.blobs.get(digest)
        if data is None:
            raise AwsError(404, "NoSuchKey", "The specified key does not exist.")
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(data)))])
        return [data]

    def _put_image(self, req: Request, start_response: StartResponse) -> Iterable[bytes]:
        params = req.json()
        manifest = params.get("imageManifest", "")
        real = "sha256:" + hashlib.sha256(manifest.encode("utf-8")).hexdigest()
        given = params.get("imageDigest")
        if given and given != real:
            raise AwsError(400, "ImageDigestDoesNotMatchException", f"Invalid parameter: digest {given} does not match the manifest ({real})")
        params["imageDigest"] = real
        return _json(start_response, req, self._moto_json(req, payload=params))

    def _batch_get_image(self, req: Request, start_response: StartResponse) -> Iterable[bytes]:
        params = req.json()
        doc = self._moto_json(req)
        ids = params.get("imageIds") or []
        if len(ids) == 1 and len(doc.get("images", [])) == 1:
            image = doc["images"][0]
            image["imageId"] = {"imageDigest": image["imageId"].get("imageDigest"), **ids[0]}
            if "imageTag" not in ids[0]:
                image["imageId"].pop("imageTag", None)
        return _json(start_response, req, doc)

    # ---------------------------------------------------------------- ECS
    def _ecs_create_service(self, req: Request, start_response: StartResponse) -> Iterable[bytes]:
        params = req.json()
        extras = {k: params.pop(k) for k in ("capacityProviderStrategy", "placementConstraints", "placementStrategy") if k in params}
        launch_type = params.get("launchType")
        if not launch_type and "capacityProviderStrategy" not in extras:
            clusters = self._moto_json(req, ECS + "DescribeClusters", {"clusters": [params.get("cluster", "default")]})
            default = (clusters.get("clusters") or [{}])[0].get("defaultCapacityProviderStrategy")
            if default:
                extras["capacityProviderStrategy"] = default
            else:
                launch_type = "EC2"  # ECS's own default with no strategy anywhere
        if launch_type == "EXTERNAL":
            params["launchType"] = "EC2"  # moto refuses EXTERNAL; put it back below
        doc = self._moto_json(req, payload=params)
        service = doc["service"]
        extras["launchType"] = launch_type  # None = a capacity provider strategy, no launch type
        with self.lock:
            self.ecs_extras[service["serviceArn"]] = extras
        _apply_extras(service, extras)
        return _json(start_response, req, doc)

    def _ecs_describe_services(self, req: Request, start_response: StartResponse) -> Iterable[bytes]:
        if len(req.json().get("services", [])) > 10:  # ECS's limit; moto has none
            raise AwsError(400, "InvalidParameterException", "services can have at most 10 items.")
        doc = self._moto_json(req)
        with self.lock:
            for service in doc.get("services", []):
                if service["serviceArn"] in self.ecs_extras:
                    _apply_extras(service, self.ecs_extras[service["serviceArn"]])
        return _json(start_response, req, doc)

    # ECS list calls page (ListServices 10 at a time by default); moto returns everything at once.
    PAGES = {"ListServices": ("serviceArns", 10), "ListClusters": ("clusterArns", 100), "ListContainerInstances": ("containerInstanceArns", 100)}

    def _ecs_paginated(self, req: Request, start_response: StartResponse) -> Iterable[bytes]:
        key, default = self.PAGES[req.operation]
        params = req.json()
        size = int(params.pop("maxResults", default))
        if not 1 <= size <= 100:
            raise AwsError(400, "InvalidParameterException", "maxResults must be between 1 and 100")
        start = int(params.pop("nextToken", None) or 0)
        doc = self._moto_json(req, payload=params)
        items = doc.get(key, [])
        doc[key] = items[start : start + size]
        if start + size < len(items):
            doc["nextToken"] = str(start + size)
        return _json(start_response, req, doc)

    def _ecs_list_attributes(self, req: Request, start_response: StartResponse) -> Iterable[bytes]:
        params = req.json()
        name, value = params.pop("attributeName", None), params.pop("attributeValue", None)
        cluster = params.pop("cluster", "default").rsplit("/", 1)[-1]
        # moto's own cluster filter is a no-op (a closure bug), so keep only this cluster's instances.
        members = set(self._moto_json(req, ECS + "ListContainerInstances", {"cluster": cluster}).get("containerInstanceArns", []))
        doc = self._moto_json(req, payload=params)
        doc["attributes"] = [
            a for a in doc.get("attributes", [])
            if a.get("targetId") in members and a.setdefault("targetType", "container-instance")
            and (name is None or a.get("name") == name)
            and (value is None or a.get("value") == value)
        ]
        return _json(start_response, req, doc)

    def _ecs_register_container_instance(self, req: Request, start_response: StartResponse) -> Iterable[bytes]:
        # The ECS agent registers with its attributes (ecs.cpu-architecture among them); moto
        # ignores them, so put them on the new instance the way PutAttributes would.
        params = req.json()
        doc = self._moto_json(req)
        instance = doc["containerInstance"]
        attributes = [
            {"name": a["name"], "value": a.get("value"), "targetId": instance["containerInstanceArn"]}
            for a in params.get("attributes", [])
        ]
        if attributes:
            self._moto_json(req, ECS + "PutAttributes", {"cluster": params.get("cluster", "default"), "attributes": attributes})
            known = {a["name"] for a in attributes}
            instance["attributes"] = [a for a in instance.get("attributes", []) if a["name"] not in known]
            instance["attributes"] += [{k: a[k] for k in ("name", "value") if a.get(k) is not None} for a in attributes]
        return _json(start_response, req, doc)

    # ---------------------------------------------------------------- App Runner
    def _apprunner_list(self, req: Request, start_response: StartResponse) -> Iterable[bytes]:
        params = req.json()
        page = int(params.get("MaxResults", 20))
        if not 1 <= page <= 20:
            raise AwsError(400, "InvalidRequestException", "MaxResults must be between 1 and 20")
        start = int(params.get("NextToken") or 0)
        with self.lock:
            services = [s for s in self.apprunner.values() if s["_region"] == (req.region or DEFAULT_REGION)]
        keys = ("ServiceName", "ServiceId", "ServiceArn", "ServiceUrl", "CreatedAt", "UpdatedAt", "Status")
        out: dict[str, Any] = {"ServiceSummaryList": [{k: s[k] for k in keys} for s in services[start : start + page]]}
        if start + page < len(services):
            out["NextToken"] = str(start + page)
        return _json(start_response, req, out)

    def _apprunner_describe(self, req: Request, start_response: StartResponse) -> Iterable[bytes]:
        arn = req.json().get("ServiceArn", "")
        with self.lock:
            service = self.apprunner.get(arn)
        if service is None:
            raise AwsError(400, "ResourceNotFoundException", f"Resource {arn} is not found")
        return _json(start_response, req, {"Service": _public(service)})

    # ---------------------------------------------------------------- control API
    def _control(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        body = _read_body(environ)
        spec = json.loads(body) if body else {}
        out: Any = {"ok": True}
        if path == "/_standin/reset" and method == "POST":
            self.reset()
        elif path == "/_standin/faults" and method == "POST":
            self.add_fault(**spec)
        elif path == "/_standin/faults" and method == "DELETE":
            self.clear_faults()
        elif path == "/_standin/latency" and method == "POST":
            self.set_latency(spec.get("ms", 0))
        elif path == "/_standin/calls" and method == "GET":
            out = self.get_calls()
        elif path == "/_standin/calls" and method == "DELETE":
            self.reset_calls()
        elif path == "/_standin/requests" and method == "GET":
            out = self.requests()
        elif path == "/_standin/requests" and method == "DELETE":
            self.reset_calls()
        elif path == "/_standin/apprunner/services" and method == "POST":
            out = self.add_apprunner_service(**spec)
        else:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [json.dumps({"error": f"no control {method} {path}"}).encode()]
        data = json.dumps(out).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


class BlobPut:
    """`PUT /_standin/blobs/<digest>` must not go through the AWS path; route it first."""

    def __init__(self, standin: StandIn):
        self.standin = standin

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ["REQUEST_METHOD"] == "PUT" and path.startswith("/_standin/blobs/"):
            digest = self.standin.seed_blob(_read_body(environ), path.rsplit("/", 1)[-1])
            data = json.dumps({"digest": digest}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return [data]
        return self.standin(environ, start_response)


class _QuietHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like AWS endpoints: SDK connection pools get reused

    def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per request is noise here
        pass


class Emulator:
    """The whole thing: start() on a free loopback port, stop() at the end."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.standin = StandIn(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(host, port, BlobPut(self.standin), threaded=True, request_handler=_QuietHandler)
        self.host, self.port = host, self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> "Emulator":
        self._thread = threading.Thread(target=self._server.serve_forever, name="emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        """Fresh account: moto's reset endpoint (which resets the stand-in too)."""
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=30).read()

    def __getattr__(self, name: str) -> Any:  # seed_blob, add_fault, get_calls ... live on StandIn
        return getattr(self.standin, name)


# -------------------------------------------------------------------- helpers
def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the whole body once (Content-Length or chunked) and leave a re-readable copy."""
    from werkzeug.wsgi import get_input_stream

    data = get_input_stream(environ).read()
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ.pop("wsgi.input_terminated", None)
    return data


def _signing_scope(auth: str) -> tuple[str, str]:
    # "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ecs/aws4_request, SignedHeaders=..."
    m = re.search(r"Credential=[^/]+/\d+/([^/]+)/([^/]+)/aws4_request", auth)
    return (m.group(2), m.group(1)) if m else ("", "")


_REST_ROUTES: dict[str, list[tuple[str, re.Pattern[str], str]]] = {}


def _rest_operation(service: str, method: str, path: str) -> str:
    """Name a REST call (Lambda) from botocore's own model: method + URI template -> operation."""
    if service not in _REST_ROUTES:
        routes = []
        try:
            import botocore.session

            model = botocore.session.get_session().get_service_model(service)
            for op in model.operation_names:
                http = model.operation_model(op).http
                template = http["requestUri"].split("?")[0]
                pattern = re.sub(r"\\\{[^}]+\\\+\\\}", ".+", re.escape(template))
                pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)
                routes.append((http["method"], re.compile(pattern + "/?$"), op))
            # Most literal characters first, so /functions/{F}/configuration beats /functions/{F+}.
            routes.sort(key=lambda r: -len(re.sub(r"\[\^/\]\+|\.\+", "", r[1].pattern)))
        except Exception:
            pass
        _REST_ROUTES[service] = routes
    for m, pattern, op in _REST_ROUTES[service]:
        if m == method and pattern.match(path):
            return op
    return f"{method} {path}"


def _journal_body(req: Request) -> Any:
    if req.protocol == "json" or req.body[:1] == b"{":
        try:
            return json.loads(req.body)
        except ValueError:
            pass
    if req.protocol == "query":
        return {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
    return req.body.decode("utf-8", "replace") if req.body else None


def _public(service: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in service.items() if not k.startswith("_")}


def _apply_extras(service: dict[str, Any], extras: dict[str, Any]) -> None:
    for key in ("capacityProviderStrategy", "placementConstraints", "placementStrategy"):
        if key in extras:
            service[key] = extras[key]
    if extras.get("launchType"):
        service["launchType"] = extras["launchType"]
    else:
        service.pop("launchType", None)
    for deployment in service.get("deployments", []):  # deployments repeat the service's choice
        if extras.get("launchType"):
            deployment["launchType"] = extras["launchType"]
        else:
            deployment.pop("launchType", None)
        if "capacityProviderStrategy" in extras:
            deployment["capacityProviderStrategy"] = extras["capacityProviderStrategy"]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _request_id() -> str:
    return str(uuid.uuid4())


def _json(start_response: StartResponse, req: Request, doc: Any) -> Iterable[bytes]:
    data = json.dumps(doc, default=str).encode()
    ctype = req.content_type or "application/x-amz-json-1.1"
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(data))), ("x-amzn-RequestId", _request_id())])
    return [data]


def _error(req: Request, err: AwsError, start_response: StartResponse) -> Iterable[bytes]:
    """An AWS error in the request's protocol, as the SDKs parse it."""
    status = f"{err.status} {_reason(err.status)}"
    headers = [("x-amzn-RequestId", _request_id()), ("x-amzn-ErrorType", err.code)]
    if req.protocol == "json":
        ctype = req.content_type or "application/x-amz-json-1.1"
        data = json.dumps({"__type": err.code, "message": err.message}).encode()
    elif req.protocol == "rest-json":
        ctype = "application/json"
        data = json.dumps({"Type": "User" if err.status < 500 else "Service", "Message": err.message}).encode()
    else:  # query protocol (SNS, IAM, STS) and the S3-style blob URL speak XML
        ctype = "text/xml"
        kind = "Sender" if err.status < 500 else "Receiver"
        data = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{err.code}</Code><Message>{err.message}</Message>"
            f"</Error><RequestId>{_request_id()}</RequestId></ErrorResponse>"
        ).encode()
        if req.protocol == "s3":
            data = f"<Error><Code>{err.code}</Code><Message>{err.message}</Message></Error>".encode()
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(data))), *headers])
    return [data]


def _drop_connection(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Close the TCP connection without an answer: the client sees the endpoint as unreachable."""
    sock: socket.socket | None = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    # Werkzeug's attempt to write this fails on the closed socket and is treated as a dropped client.
    start_response("500 Dropped", [("Content-Length", "0")])
    return [b""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    emulator = Emulator(port=args.port).start()
    print(emulator.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        emulator.stop()


if __name__ == "__main__":
    main()
