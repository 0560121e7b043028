"""Database access: engine, sessions and units of work, the ORM base, the embedded server."""
