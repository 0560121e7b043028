"""The import contracts of ``[tool.importlinter]`` in ``pyproject.toml`` hold.

CI runs only the tests, so this is what keeps the layering (issue 9): ``lint-imports`` runs
on the source tree and every declared contract must be kept.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_every_import_contract_is_kept() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
    # The layers contract and the two "knows no HTTP / web framework" contracts at least.
    assert len(contracts) >= 3
    result = subprocess.run(  # noqa: S603 (our own venv's tool on our own config)
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(contracts)} kept, 0 broken." in result.stdout
    for contract in contracts:
        assert f"{contract['name']} KEPT" in result.stdout
