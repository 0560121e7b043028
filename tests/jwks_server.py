"""A real local JWKS endpoint (an HTTP server on 127.0.0.1) and a token issuer for tests."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://issuer.test/"
AUDIENCE = "patron-test"


class Issuer:
    """Holds signing keys, serves their public JWKS over HTTP, mints tokens."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.algs: dict[str, str] = {}
        self.requests = 0
        self.active_kid = self.rotate()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests += 1
                body = json.dumps(issuer.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def rotate(self, alg: str = "RS256") -> str:
        """Add a new key and make it the signing key; returns its kid."""
        kid = uuid.uuid4().hex[:12]
        key = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if alg == "RS256"
            else ec.generate_private_key(ec.SECP256R1())
        )
        self.keys[kid] = key
        self.algs[kid] = alg
        self.active_kid = kid
        return kid

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, key in self.keys.items():
            algo = (
                jwt.algorithms.RSAAlgorithm
                if self.algs[kid] == "RS256"
                else jwt.algorithms.ECAlgorithm
            )
            jwk = json.loads(algo.to_jwk(key.public_key()))
            jwk.update(kid=kid, alg=self.algs[kid], use="sig")
            out.append(jwk)
        return {"keys": out}

    def token(
        self,
        *,
        sub: str = "user-1",
        roles: list[str] | str | None = None,
        tenant_id: str | None = None,
        expires_in: int = 300,
        audience: str = AUDIENCE,
        issuer: str = ISSUER,
        kid: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        kid = kid or self.active_kid
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": sub,
            "iss": issuer,
            "aud": audience,
            "iat": now,
            "exp": now + expires_in,
        }
        if roles is not None:
            claims["roles"] = roles
        if tenant_id is not None:
            claims["tenant_id"] = tenant_id
        claims.update(extra or {})
        return jwt.encode(claims, self.keys[kid], algorithm=self.algs[kid], headers={"kid": kid})

    def close(self) -> None:
        self.server.shutdown()
