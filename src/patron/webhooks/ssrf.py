"""SSRF guard for webhook URLs (OWASP "Server-Side Request Forgery Prevention Cheat Sheet").

A webhook URL is a request Patron makes on a tenant's behalf, so it must not reach the
inside of Patron's network. By default a URL is refused unless it is ``https`` and *every*
address its host resolves to is a public unicast address: loopback, private (RFC 1918,
RFC 4193 unique-local), link-local (cloud metadata at 169.254.169.254), multicast,
reserved, unspecified, shared (RFC 6598 CGNAT) and documentation ranges are refused, and
IPv4-mapped / 6to4 / Teredo IPv6 addresses are judged by the IPv4 address they carry.
The check runs when an endpoint is created and again before every delivery attempt (DNS
answers can change); the dispatcher then connects to the very address that was checked
(:class:`ResolvedTarget`), so a DNS rebinding between check and connect cannot redirect it.

``WEBHOOKS_ALLOW_PRIVATE_TARGETS`` turns the guard off (http and private targets allowed),
for development and tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048


class UnsafeTargetError(ValueError):
    """The URL may not be called; ``str()`` says why (safe to show to the endpoint's owner)."""


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    """A checked URL: its host name, port and the addresses it resolved to (all allowed)."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, 6to4 or Teredo IPv6 address, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    # IPv4-compatible (deprecated, ::a.b.c.d) and NAT64 well-known prefix 64:ff9b::/96
    packed = address.packed
    if packed[:12] == bytes(12) or packed[:12] == bytes.fromhex("0064ff9b0000000000000000"):
        return ipaddress.IPv4Address(packed[12:])
    return None


def is_public_address(address: IPAddress) -> bool:
    """True for a globally routable unicast address (:attr:`ipaddress.IPv4Address.is_global`,
    IANA special-purpose registries), judged by the embedded IPv4 address for IPv6 forms
    that carry one."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            return is_public_address(inner)
    return bool(
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_unspecified
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_private
    )


def parse_url(url: str, *, allow_private: bool) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an absolute http(s) URL without credentials.

    Raises :class:`UnsafeTargetError` for anything else, and for ``http`` unless
    ``allow_private``.
    """
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTargetError(f"URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTargetError(f"not a valid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeTargetError("URL must be https://")
    if scheme == "http" and not allow_private:
        raise UnsafeTargetError("URL must be https:// (http is for development only)")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTargetError("URL must not contain credentials")
    if parts.fragment:
        raise UnsafeTargetError("URL must not contain a fragment")
    host = parts.hostname
    if not host:
        raise UnsafeTargetError("URL has no host")
    return scheme, host, port or (443 if scheme == "https" else 80)


async def resolve(host: str, port: int, wait_seconds: float) -> tuple[IPAddress, ...]:
    """Every address ``host`` resolves to (``loop.getaddrinfo``, both families), in the
    resolver's order. Raises :class:`UnsafeTargetError` when it does not resolve in time."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return (literal,)
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=wait_seconds
        )
    except TimeoutError as exc:
        raise UnsafeTargetError(f"host {host!r} did not resolve in {wait_seconds:g} s") from exc
    except (OSError, UnicodeError) as exc:
        raise UnsafeTargetError(f"host {host!r} does not resolve") from exc
    found: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        # strip an IPv6 zone id ("fe80::1%eth0")
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise UnsafeTargetError(f"host {host!r} does not resolve")
    return tuple(found)


async def check_url(url: str, *, allow_private: bool, dns_timeout: float) -> ResolvedTarget:
    """Parse, resolve and judge ``url``.

    Returns the :class:`ResolvedTarget`; raises :class:`UnsafeTargetError` when the URL is
    malformed, not https (unless ``allow_private``), does not resolve, or when any of its
    addresses is not public (unless ``allow_private``).
    """
    scheme, host, port = parse_url(url, allow_private=allow_private)
    addresses = await resolve(host, port, dns_timeout)
    if not allow_private:
        for address in addresses:
            if not is_public_address(address):
                raise UnsafeTargetError(
                    f"host {host!r} resolves to a non-public address ({address}); "
                    "webhooks may only call public addresses"
                )
    return ResolvedTarget(url=url, scheme=scheme, host=host, port=port, addresses=addresses)
