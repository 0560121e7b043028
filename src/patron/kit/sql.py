"""Moved to :mod:`patron.db.fastpath` (issue 9: ``kit`` holds no database code).

A temporary alias for the two modules that still import ``Executor`` from here
(``auth/dependencies.py``, ``customers/service.py``); delete this file once they import
``patron.db.fastpath``: the import-linter contract "patron.kit must not import patron.db"
refuses it.
"""

from __future__ import annotations

from patron.db.fastpath import Executor

__all__ = ["Executor"]
