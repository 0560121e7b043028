#!/bin/sh
# Generate the Python modules of proto/patron/v1/*.proto into OUT (default: src), as the
# package patron.grpc_api.v1: `make proto` runs it; tests/grpc_api/test_codegen.py runs it
# into a temporary directory and compares, so committed code that is stale fails a test.
# The -I mapping places the proto (package patron.v1) at patron/grpc_api/v1/ for Python.
# Stubs (.pyi) for messages and the async servicer/stub come from mypy-protobuf.
set -eu
cd "$(dirname "$0")/.."
OUT="${1:-src}"
PATH="$PWD/.venv/bin:$PATH" .venv/bin/python -m grpc_tools.protoc \
  -Ipatron/grpc_api/v1=proto/patron/v1 \
  --python_out="$OUT" --grpc_python_out="$OUT" \
  --mypy_out="$OUT" --mypy_grpc_out="$OUT" \
  proto/patron/v1/customers.proto
