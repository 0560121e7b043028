"""``python -m patron``: the ``patron`` command."""

from patron.cli import app

app(prog_name="patron")
