# The README's two commands are `make demo` and `make test`; .ci/run calls `make test` too.
SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
BIN := $(TARGET_DIR)/debug/ecr-platform-guard
VENV := .venv
VENV_STAMP := $(VENV)/.installed-$(shell sha256sum requirements-test.txt | cut -c1-12)

.PHONY: test unit e2e demo inspect-demo lint venv binary clean

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
