"""The HTTP transport's own pieces: the request scope (:mod:`.scope`), the one paging
dependency (:mod:`.paging`), problem+json rendering
(:mod:`.problems`), the ASGI middleware (:mod:`.middleware`) and the HTTP side of
idempotent POSTs (:mod:`.idempotency`).

Services and repositories never import this package (an import-linter contract in
``pyproject.toml``): they raise :class:`patron.errors.PatronError` and return values, and
this package turns those into responses.
"""
