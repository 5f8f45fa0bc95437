"""Where outbound calls may go: public https addresses only (DESIGN §7).

This module classifies URLs and IP addresses; it does no I/O. Registration uses
:func:`url_problem` for literal addresses and obviously internal names; the webhook transport (actions
issue) resolves names and re-checks every address it connects to with :func:`is_public_address`.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(address))
    return None


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True only for globally routable unicast addresses, looking inside IPv6 forms that embed IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public_address(embedded)
    if address.is_multicast or (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT):
        return False
    return address.is_global


def parse_ip_host(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally (dotted, bracketed IPv6, or a bare decimal integer), else None."""
    candidate = host.strip("[]")
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        pass
    if candidate.isdigit() and int(candidate) < 2**32:
        return ipaddress.IPv4Address(int(candidate))
    return None


def url_problem(url: str, *, allow_http_hosts: frozenset[str] = frozenset()) -> str | None:
    """Why ``url`` may not be called (a sentence), or None when it passes the static checks."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"'{url}' is not a valid URL ({exc})"
    if not host:
        return f"'{url}' has no host"
    if parts.username is not None or parts.password is not None:
        return f"'{url}' must not contain credentials; put secrets in an Airflow connection"
    address = parse_ip_host(host)
    if address is not None and not is_public_address(address):
        return f"'{url}' points at {address}, which is not a public address"
    if address is None and (host == "localhost" or host.endswith(_INTERNAL_SUFFIXES) or "." not in host):
        return f"'{url}' points at the internal host '{host}', not a public address"
    if parts.scheme != "https" and not (parts.scheme == "http" and host in allow_http_hosts):
        return f"'{url}' must use https (http only for hosts an admin allows)"
    return None
