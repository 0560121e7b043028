"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 (random port) that
verifies each request as docs/webhooks.md tells receivers to, and records every request:
``Patron-Signature`` with the check written out here, and the Standard Webhooks headers
with the ``standardwebhooks`` library (``Webhook(secret).verify(body, headers)``).

Neither check is imported from Patron: this is the receiver's side of the contract.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks import Webhook, WebhookVerificationError

TOLERANCE_SECONDS = 300


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_valid: bool
    timestamp: int | None
    standard_valid: bool = False

    def verifies_with(self, secret: str) -> bool:
        """Whether the Standard Webhooks headers verify with ``secret`` (the library's
        check, 5 minutes' tolerance, so it can be made after the fact)."""
        return standard_verifies(secret, self.headers, self.body)

    def legacy_verifies_with(self, secret: str) -> bool:
        """Whether ``Patron-Signature`` verifies with ``secret`` (the documented check)."""
        try:
            verify(secret, self.headers.get("patron-signature", ""), self.body)
        except ValueError:
            return False
        return True

    def json(self) -> Any:
        return json.loads(self.body)


def verify(secret: str, header: str, body: bytes, now: float | None = None) -> int:
    """The documented check: parse ``t`` and every ``v1``, recompute the HMAC over
    ``f"{t}.{body}"``, compare with each ``v1`` in constant time (one must match: there are
    two during a secret rotation), refuse a ``t`` further than 5 minutes from now. Returns
    ``t``; raises ``ValueError``."""
    pairs = [item.split("=", 1) for item in header.split(",") if "=" in item]
    stamps = [value for key, value in pairs if key == "t"]
    if len(stamps) != 1:
        raise ValueError("no single t")
    timestamp = int(stamps[0])
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    received = [value for key, value in pairs if key == "v1"]
    if not any(hmac.compare_digest(expected, value) for value in received):
        raise ValueError("bad signature")
    if abs((now or time.time()) - timestamp) > TOLERANCE_SECONDS:
        raise ValueError("timestamp outside tolerance")
    return timestamp


def standard_verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The Standard Webhooks check, by the reference library."""
    try:
        Webhook(secret).verify(body, headers)
    except (WebhookVerificationError, ValueError):  # ValueError: a malformed header
        return False
    return True


class Receiver:
    """Serves POSTs; ``status`` decides each answer (a fixed code or a function of the
    request number, 1-based), sent after ``delay`` seconds. ``secret`` is set once the
    endpoint is created; with ``tls`` it serves HTTPS as ``localhost``."""

    def __init__(
        self,
        status: int | Callable[[int], int] = 200,
        tls: ssl.SSLContext | None = None,
        delay: float = 0.0,
    ) -> None:
        self.status = status
        self.secret: str | None = None
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                valid, timestamp, standard = False, None, False
                if receiver.secret is not None:
                    try:
                        timestamp = verify(
                            receiver.secret, headers.get("patron-signature", ""), body
                        )
                        valid = True
                    except ValueError:
                        valid = False
                    standard = standard_verifies(receiver.secret, headers, body)
                with receiver.lock:
                    receiver.requests.append(
                        Received(self.path, headers, body, valid, timestamp, standard)
                    )
                    n = len(receiver.requests)
                code = receiver.status(n) if callable(receiver.status) else receiver.status
                if delay:
                    time.sleep(delay)  # a slow receiver (own thread per request)
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", f"{receiver.url}/redirected")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        if tls is not None:  # HTTPS with a certificate for "localhost"
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            self.url = f"https://localhost:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def close(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()


@dataclass
class LocalCertificate:
    """A self-signed certificate for ``localhost``: the server context and a client
    context that trusts only it."""

    server: ssl.SSLContext
    client: ssl.SSLContext


def localhost_certificate(directory: Path) -> LocalCertificate:
    """Make a self-signed certificate (SAN ``DNS:localhost``) under ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return LocalCertificate(server=server, client=client)
