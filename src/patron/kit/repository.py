"""Moved to :mod:`patron.db.repository` (the scoped repository base) and
:mod:`patron.db.fastpath` (``require_session``), issue 9: ``kit`` holds no database code.

A temporary alias for ``customers/service.py``, which still imports ``require_session``
from here; delete this file once it imports ``patron.db.fastpath``: the import-linter
contract "patron.kit must not import patron.db" refuses it.
"""

from __future__ import annotations

from patron.db.fastpath import require_session

__all__ = ["require_session"]
