"""Optional parts installed as package extras (``[project.optional-dependencies]``).

A configured feature whose extra is missing fails with one line saying which setting asks
for it and how to install it, instead of a ``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import importlib.util


class MissingExtra(RuntimeError):
    """A setting asks for a feature whose package extra is not installed."""


def require_extra(extra: str, module: str, setting: str) -> None:
    """Raise :class:`MissingExtra` naming ``setting`` (e.g. ``"KAFKA_BOOTSTRAP_SERVERS is
    set"``) and the install command unless ``module`` (a module of ``extra``) can be found.
    The module is located, not imported (importing some has side effects)."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package, a broken entry
        found = False
    if not found:
        raise MissingExtra(
            f"{setting} but the '{extra}' extra is not installed ({module} is missing): "
            f"pip install 'patron[{extra}]', or uv sync --extra {extra} in a checkout"
        )
