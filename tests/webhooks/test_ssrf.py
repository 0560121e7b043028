"""The SSRF guard: which addresses and URLs a webhook may target (webhooks/ssrf.py)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patron.webhooks.ssrf import UnsafeTargetError, check_url, is_public_address

NOT_PUBLIC = [
    "127.0.0.1",
    "127.10.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # shared address space (CGNAT)
    "0.0.0.0",  # noqa: S104 - an address under test, not a bind
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.10",  # documentation
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "2002:7f00:1::1",  # 6to4 carrying 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 carrying 10.0.0.1
    "2001:db8::1",  # documentation
]
PUBLIC = ["93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


@given(st.ip_addresses(v=4, network="10.0.0.0/8") | st.ip_addresses(v=4, network="127.0.0.0/8"))
def test_any_private_or_loopback_v4_is_refused_plain_and_mapped(
    address: ipaddress.IPv4Address,
) -> None:
    assert not is_public_address(address)
    assert not is_public_address(ipaddress.IPv6Address(f"::ffff:{address}"))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/hook", "non-public"),
        ("https://localhost/hook", "non-public"),
        ("https://[::1]:8443/hook", "non-public"),
        ("https://[::ffff:127.0.0.1]/hook", "non-public"),
        ("https://169.254.169.254/latest/meta-data", "non-public"),
        ("http://93.184.215.14/hook", "https"),
        ("ftp://93.184.215.14/hook", "https"),
        ("https://user:pw@93.184.215.14/hook", "credentials"),
        ("https:///nohost", "no host"),
        ("https://93.184.215.14:99999/", "not a valid URL"),
        ("https://does-not-exist.invalid/hook", "does not resolve"),
        ("not a url", "https"),
    ],
)
async def test_unsafe_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeTargetError, match=reason):
        await check_url(url, allow_private=False, dns_timeout=2.0)


async def test_public_https_url_passes_and_reports_its_addresses() -> None:
    target = await check_url("https://93.184.215.14:8443/h?x=1", allow_private=False, dns_timeout=1)
    assert (target.scheme, target.host, target.port) == ("https", "93.184.215.14", 8443)
    assert target.addresses == (ipaddress.ip_address("93.184.215.14"),)


async def test_development_setting_allows_http_and_loopback() -> None:
    target = await check_url("http://localhost:8080/hook", allow_private=True, dns_timeout=1)
    assert target.port == 8080
    assert ipaddress.ip_address("127.0.0.1") in target.addresses
    with pytest.raises(UnsafeTargetError, match="https"):
        await check_url("ftp://127.0.0.1/", allow_private=True, dns_timeout=1)
