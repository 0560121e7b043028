"""The committed generated code is what ``make proto`` makes of the committed proto."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "src" / "patron" / "grpc_api" / "v1"


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    subprocess.run([str(ROOT / "proto" / "generate.sh"), str(tmp_path)], check=True)  # noqa: S603
    fresh = tmp_path / "patron" / "grpc_api" / "v1"
    made = sorted(p.name for p in fresh.iterdir())
    assert made == [
        "customers_pb2.py",
        "customers_pb2.pyi",
        "customers_pb2_grpc.py",
        "customers_pb2_grpc.pyi",
    ]
    for name in made:
        assert (GENERATED / name).read_text() == (fresh / name).read_text(), (
            f"{name} is stale: run `make proto` and commit the result"
        )
