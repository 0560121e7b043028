"""Authentication and authorisation: principals, JWTs via JWKS, API keys, role checks."""
