"""`make demo`: the product's main job, end to end, on a local emulator. Nothing else needed but the venv.

1. Start the emulator (moto's server + the stand-in, see emulator.py) on a free loopback port.
2. Seed a small shop account: cluster `shop` with two Fargate services on `shop/web:latest`,
   `checkout` (no runtimePlatform, so x86-64) and `search` (runtimePlatform ARM64); an App Runner
   service `storefront` with automatic deployment on the same tag; an SNS topic
   `ecr-platform-guard-alerts` with an SQS queue subscribed.
3. Push an arm64 single-platform image to `shop/web:latest`, as a build on an Apple-silicon Mac does.
4. Run the validator once on the push event exactly as EventBridge delivers it (ACTIONS=alert,tag).
5. Print the command and its exit status, the report, the alert as the SQS subscriber received it,
   and the image's tags in ECR.

Exit status 0 when all of that came out as expected (the validator itself exits 1: incompatible),
1 when something did not, 2 when the demo could not run. Usage:

    EPG_BIN=target/debug/ecr-platform-guard .venv/bin/python tests/e2e/demo.py
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore")  # moto/botocore deprecation noise is not part of the demo

from binary import aws_env  # noqa: E402  (tests/e2e is on sys.path: it holds this file)
from emulator import Emulator  # noqa: E402
from seed import Clients, Seeder, event_for, image_uri  # noqa: E402

REPO, TAG, TOPIC = "shop/web", "latest", "ecr-platform-guard-alerts"
ROOT = Path(__file__).resolve().parents[2]


def heading(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(3, 76 - len(text)))


def binary() -> str:
    path = os.environ.get("EPG_BIN") or str(ROOT / "target" / "debug" / "ecr-platform-guard")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        sys.exit(f"demo: no ecr-platform-guard binary at {path}; build it (make binary) or set EPG_BIN")
    return path


def seed_shop(seed: Seeder) -> tuple[str, str]:
    """The account before the push. Returns (topic_arn, queue_url)."""
    uri = image_uri(REPO, TAG)
    seed.repository(REPO)
    seed.cluster("shop")
    seed.ecs_service("shop", "checkout", seed.task_definition("checkout", uri), launch_type="FARGATE")
    seed.ecs_service("shop", "search", seed.task_definition("search", uri, cpu_architecture="ARM64"), launch_type="FARGATE")
    seed.apprunner_service("storefront", uri, auto_deploy=True)
    topic, queue = seed.alert_topic(TOPIC)
    print(f"ECS cluster shop:     Fargate service checkout  -> {uri}  (no runtimePlatform: linux/amd64)")
    print(f"                      Fargate service search    -> {uri}  (runtimePlatform ARM64)")
    print(f"App Runner:           service storefront        -> {uri}  (automatic deployment on)")
    print(f"SNS topic:            {topic}")
    print(f"  subscribed:         SQS queue {queue.rsplit('/', 1)[-1]}")
    return topic, queue


def main() -> int:
    epg = binary()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    problems: list[str] = []
    emulator = Emulator().start()  # free loopback port
    try:
        with tempfile.TemporaryDirectory(prefix="epg-demo-") as tmp:
            heading("1. Emulator")
            print(f"moto server + stand-in for App Runner and ECR blob URLs on {emulator.url}")

            heading("2. The shop account")
            seed = Seeder(emulator, Clients(emulator.url))
            topic, queue = seed_shop(seed)

            heading("3. Push (an Apple-silicon build)")
            pushed = seed.push_image(REPO, TAG, platforms=[("linux", "arm64")])
            config = json.loads(emulator.standin.blobs[pushed.config_digest])
            print(f"pushed {image_uri(REPO, TAG)}")
            print(f"  digest {pushed.digest}")
            print(f"  {pushed.media_type}, config blob says os={config['os']} architecture={config['architecture']}")

            heading("4. The event, as EventBridge delivers it to the function")
            event_path = Path(tmp) / "push-event.json"
            event_path.write_text(json.dumps(event_for(pushed), indent=2) + "\n")
            print(event_path.read_text(), end="")

            heading("5. The validator, run once")
            settings = {"ACTIONS": "alert,tag", "ALERT_TOPIC_ARN": topic, "AWS_ENDPOINT_URL": emulator.url}
            args = [epg, "check", "--event", str(event_path), "--format", "json"]
            shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in settings.items()) + " \\\n  " + shlex.join(args)
            print(f"$ {shown}")
            env = aws_env(emulator.url, **settings)  # clean: dummy credentials, no ~/.aws, no IMDS
            try:
                proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
            finally:
                shutil.rmtree(env["HOME"], ignore_errors=True)
            print(f"exit status: {proc.returncode}  (0 nothing incompatible, 1 incompatible, 2 failure)")
            if proc.stderr.strip():
                print(f"stderr:\n{proc.stderr.rstrip()}")
            try:
                report = json.loads(proc.stdout)
            except ValueError:
                print(f"stdout:\n{proc.stdout}")
                print("\ndemo: FAILED - the validator did not print a JSON report")
                return 1

            heading("Report (JSON, what the Lambda returns)")
            print(compact_json(report))

            heading("Alert, as the SQS subscriber received it")
            envelopes = seed.received(queue, wait_seconds=2)
            for envelope in envelopes:
                print(f"Subject: {envelope.get('Subject')}")
                print("MessageAttributes: " + ", ".join(f"{k}={v['Value']}" for k, v in sorted(envelope.get("MessageAttributes", {}).items())))
                print("Message:")
                print("  " + envelope.get("Message", "").rstrip().replace("\n", "\n  "))
            if not envelopes:
                print("(nothing received)")

            heading(f"Tags in ECR, repository {REPO}")
            images = seed.aws.ecr.describe_images(repositoryName=REPO)["imageDetails"]
            for image in images:
                print(f"{image['imageDigest']}  tags: {', '.join(sorted(image.get('imageTags', []))) or '(untagged)'}")

            problems = verify(proc.returncode, report, envelopes, seed.tags_of(REPO, pushed.digest))
    except Exception as e:  # the demo itself broke: say where, stop the emulator, exit 2
        print(f"\ndemo: could not run: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    finally:
        emulator.stop()

    heading("Result")
    if problems:
        for p in problems:
            print(f"UNEXPECTED: {p}")
        print("demo: FAILED")
        return 1
    print("As expected: checkout and storefront cannot run the arm64 image, search can; one alert")
    print("published, the image tagged incompatible-latest. demo: OK")
    return 0


def compact_json(doc: Any, indent: str = "") -> str:
    """Indented JSON with lists of plain values on one line: `"platforms": ["linux/arm64"]`."""
    inner = indent + "  "
    if isinstance(doc, dict) and doc:
        items = [f"{inner}{json.dumps(k)}: {compact_json(v, inner)}" for k, v in doc.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(doc, list) and any(isinstance(v, (dict, list)) for v in doc):
        return "[\n" + ",\n".join(inner + compact_json(v, inner) for v in doc) + f"\n{indent}]"
    return json.dumps(doc, separators=(", ", ": "))


def verify(code: int, report: dict[str, Any], envelopes: list[dict[str, Any]], tags: list[str]) -> list[str]:
    """What the demo is meant to show; anything else is reported and fails it."""
    problems = []
    if code != 1 or report.get("verdict") != "incompatible":
        problems.append(f"validator exit {code}, verdict {report.get('verdict')!r}; expected 1, incompatible")
    verdicts = {c["name"]: c["verdict"] for c in report.get("consumers", [])}
    want = {"checkout": "incompatible", "search": "compatible", "storefront": "incompatible"}
    if verdicts != want:
        problems.append(f"consumer verdicts {verdicts}; expected {want}")
    alert_ids = [a.get("message_id") for a in report.get("actions", []) if a["kind"] == "sns-alert"]
    if len(envelopes) != 1 or [e.get("MessageId") for e in envelopes] != alert_ids:
        problems.append(f"{len(envelopes)} alert(s) received for published {alert_ids}; expected exactly one, the same")
    elif "docker buildx build --platform" not in envelopes[0].get("Message", ""):
        problems.append("the alert does not carry the docker buildx fix")
    if tags != ["incompatible-latest", "latest"]:
        problems.append(f"image tags {tags}; expected ['incompatible-latest', 'latest']")
    return problems


if __name__ == "__main__":
    sys.exit(main())
