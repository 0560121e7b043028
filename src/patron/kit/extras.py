"""Optional parts installed as package extras (``[project.optional-dependencies]``).

A configured feature whose extra is missing fails with one line saying which setting asks
for it and how to install it, instead of a ``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import importlib


class MissingExtra(RuntimeError):
    """A setting asks for a feature whose package extra is not installed."""


def require_extra(extra: str, module: str, setting: str) -> None:
    """Import ``module`` (a module of ``extra``) or raise :class:`MissingExtra` naming
    ``setting`` (e.g. ``"KAFKA_BOOTSTRAP_SERVERS is set"``) and the install command."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(
            f"{setting} but the '{extra}' extra is not installed ({module} is missing): "
            f"pip install 'patron[{extra}]', or uv sync --extra {extra} in a checkout"
        ) from exc
