"""What a client is told when it is refused: a domain error's problem body (compared with
the one the HTTP API rendered before the error had its own class), and a CLI usage
error's exit code and message."""

from __future__ import annotations

from typing import Any

from click.testing import Result

from patron.errors import PatronError
from tests.conftest import cli_failure

# A usage error (bad option or value) exits 2 (click's UsageError.exit_code), not 1 as a
# traceback would.
USAGE_ERROR = 2


def problem_of(error: PatronError) -> dict[str, Any]:
    """``error``'s problem object as the one handler renders it (without ``trace_id``),
    less ``title``, which follows from the status."""
    body = error.to_problem()
    body.pop("title")
    return body


def usage_error(result: Result) -> str:
    """The message of a refused CLI invocation, after checking it ended as a usage error
    (exit 2 through ``SystemExit``, no traceback): :func:`tests.conftest.cli_failure`."""
    return cli_failure(result, USAGE_ERROR)
