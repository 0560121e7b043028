"""The HTTP transport: what routes share (scopes, paging, problem rendering, middleware)."""
