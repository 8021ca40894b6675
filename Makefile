# The README's two commands are `make demo` and `make test`; .ci/run calls `make test` too.
SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
BIN := $(TARGET_DIR)/debug/ecr-platform-guard
VENV := .venv
VENV_STAMP := $(VENV)/.installed-$(shell sha256sum requirements-test.txt | cut -c1-12)

.PHONY: test unit e2e demo inspect-demo bench lint venv binary clean

## The whole suite: unit, fixture and adapter tests, then end-to-end against moto's server.
test: unit e2e

unit:
	$(CARGO) test --all-targets

e2e: venv binary
	EPG_BIN=$(BIN) $(VENV)/bin/pytest tests/e2e -q -p no:cacheprovider

## The product's main job on a local emulator: an arm64 image pushed to emulated ECR, validated.
demo: venv binary
	EPG_BIN=$(BIN) $(VENV)/bin/python tests/e2e/demo.py

## Offline: the platforms each sample manifest declares.
inspect-demo: binary
	@for f in tests/fixtures/manifests/*.json; do \
	  echo "== $$f"; $(BIN) inspect "$$f" || true; \
	done
	@echo "== with its config blob"
	$(BIN) inspect tests/fixtures/manifests/oci-manifest-regclient-testrepo-linux-arm-v7.json \
	  --config tests/fixtures/manifests/oci-config-regclient-testrepo-linux-arm-v7.json --format json

## Figures, not assertions: 2,000 ECS services on the emulator, cold/warm, calls, memory, size.
## Results and method: docs/BENCHMARKS.md.
bench: venv
	$(CARGO) build --release --bin ecr-platform-guard
	EPG_BIN=$(TARGET_DIR)/release/ecr-platform-guard $(VENV)/bin/python tests/e2e/bench.py $(BENCH_ARGS)

lint: venv
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml

binary:
	$(CARGO) build --bin ecr-platform-guard

venv: $(VENV_STAMP)

$(VENV_STAMP): requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-test.txt
	rm -f $(VENV)/.installed-*
	touch $@

clean:
	rm -rf $(VENV) target

# ---------------------------------------------------------------- building and deploying the Lambda
# docs/DEPLOY.md has the details. One-time set-up for each target:
#   build, invoke-local   `make tools` (run automatically the first time): cargo-lambda and Zig
#                         into .venv, and the aarch64-unknown-linux-gnu Rust target.
#   package, deploy, logs also the AWS SAM CLI as `sam` on PATH (pipx install aws-sam-cli, or
#                         AWS's installer; checked with 1.170.0) and AWS credentials for the
#                         account and region (AWS_PROFILE, AWS_REGION). `make tools` does not
#                         install SAM: its pinned dependencies clash with moto's in .venv.
CARGO_LAMBDA_VERSION := 1.9.2
ZIGLANG_VERSION := 0.17.1
TOOLS_STAMP := $(VENV)/.tools-cargo-lambda-$(CARGO_LAMBDA_VERSION)-zig-$(ZIGLANG_VERSION)
# `cargo lambda` is a cargo subcommand: cargo finds cargo-lambda on PATH, and cargo-lambda
# finds Zig (the ziglang package) through the venv's python.
WITH_TOOLS := PATH="$(CURDIR)/$(VENV)/bin:$$PATH"
SAM ?= sam
STACK ?= ecr-platform-guard
LAMBDA_BIN := ecr-platform-guard
BOOTSTRAP := $(TARGET_DIR)/lambda/$(LAMBDA_BIN)/bootstrap
## invoke-local's event; push-marker-tag.json is skipped before any AWS call, so it works
## without credentials. The others read ECR and list consumers with your credentials.
EVENT ?= events/push-marker-tag.json
WATCH_PORT ?= 9000
## Extra flags: make deploy DEPLOY_FLAGS=--guided, or DEPLOY_FLAGS="--parameter-overrides Actions=alert,tag"
DEPLOY_FLAGS ?=

.PHONY: tools build package deploy logs invoke-local

tools: $(TOOLS_STAMP)

$(TOOLS_STAMP): $(VENV_STAMP)
	$(VENV)/bin/pip install -q --disable-pip-version-check \
	  cargo-lambda==$(CARGO_LAMBDA_VERSION) ziglang==$(ZIGLANG_VERSION)
	rustup target add aarch64-unknown-linux-gnu
	$(WITH_TOOLS) $(CARGO) lambda --version
	rm -f $(VENV)/.tools-*
	touch $@

## The function's bootstrap for Lambda on Graviton (provided.al2023, arm64).
build: $(TOOLS_STAMP)
	$(WITH_TOOLS) $(CARGO) lambda build --release --arm64 --bin $(LAMBDA_BIN)
	@ls -l $(BOOTSTRAP)

## sam build (the same cargo lambda build, through the rust-cargolambda build method), then the
## code uploaded to SAM's S3 bucket and .aws-sam/packaged.yaml, a plain CloudFormation template
## (for StackSets or another region's deploy). Needs SAM and credentials.
package: $(TOOLS_STAMP)
	$(WITH_TOOLS) $(SAM) build
	$(WITH_TOOLS) $(SAM) package

## sam build + sam deploy with samconfig.toml's settings (it shows the change set and asks).
deploy: $(TOOLS_STAMP)
	$(WITH_TOOLS) $(SAM) build
	$(SAM) deploy $(DEPLOY_FLAGS)

## Follow the deployed function's log group (found through its LoggingConfig).
logs:
	$(SAM) logs --stack-name $(STACK) --name GuardFunction --tail

## The function on this machine through cargo lambda's Runtime API emulator: starts
## `cargo lambda watch` (a debug build for this machine), sends $(EVENT) with `cargo lambda invoke`,
## prints the reply, stops the emulator. Run the two by hand to keep the emulator up:
##   cargo lambda watch        and, in another shell,
##   cargo lambda invoke ecr-platform-guard --data-file events/push-single-platform.json
invoke-local: $(TOOLS_STAMP)
	@set -e; export PATH="$(CURDIR)/$(VENV)/bin:$$PATH"; \
	log=$$(mktemp); \
	$(CARGO) lambda watch --invoke-port $(WATCH_PORT) --ignore-changes >$$log 2>&1 & watch=$$!; \
	trap 'kill $$watch 2>/dev/null; wait $$watch 2>/dev/null; rm -f $$log' EXIT; \
	for i in $$(seq 1 120); do \
	  if (exec 3<>/dev/tcp/127.0.0.1/$(WATCH_PORT)) 2>/dev/null; then break; fi; \
	  if ! kill -0 $$watch 2>/dev/null; then cat $$log; exit 1; fi; \
	  sleep 1; \
	done; \
	$(CARGO) lambda invoke $(LAMBDA_BIN) --invoke-port $(WATCH_PORT) --data-file $(EVENT) \
	  || { echo "--- cargo lambda watch:"; cat $$log; exit 1; }
