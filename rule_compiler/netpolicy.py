"""Where outbound calls may go: public https addresses only (docs/security.md, docs/definitions.md).

This module classifies URLs and IP addresses. One static policy, :func:`check_webhook_url` (scheme,
no whitespace or control characters, no userinfo, IDNA host syntax, numeric hosts that are no valid
address, literal and internal addresses, internal and single-label names, ports, length), decides
both at registration (:func:`url_problem`, its verdict as a sentence) and at send time, so nothing
registers that sending would always refuse. At run time the webhook transport then calls
:func:`resolve_and_check`, which resolves every A/AAAA record (through an injected resolver) and
refuses the host if any address is not public; the transport then connects only to the checked
addresses. Private targets are reachable only through the admin allow-list
(``AUTOMATION_WEBHOOK_ALLOW_HOSTS``, read by both), whose hosts may also use http and any port.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rule_compiler.errors import PermanentActionError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Environment variable: comma-separated hostnames or IPs an admin allows (http, private, any port).
ALLOW_HOSTS_ENV = "AUTOMATION_WEBHOOK_ALLOW_HOSTS"
MAX_URL_LENGTH = 2_048
MAX_HOST_LENGTH = 253
HTTPS_PORTS = frozenset({443, 8443})
#: A resolver in the shape of :func:`socket.getaddrinfo`.
Resolver = Callable[..., Sequence[tuple[Any, ...]]]
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_HOST_CHARS = re.compile(r"^[a-z0-9.-]+$")
_FORBIDDEN_URL_CHARS = re.compile(r"[\\\s\x00-\x1f\x7f]")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")

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
    candidate = host.strip("[]").lower().rstrip(".")
    try:
        return ipaddress.ip_address(candidate.split("%", 1)[0])
    except ValueError:
        pass
    if candidate.isdigit() and int(candidate) < 2**32:
        return ipaddress.IPv4Address(int(candidate))
    return _legacy_ipv4(candidate)


def _legacy_ipv4(candidate: str) -> ipaddress.IPv4Address | None:
    """Octal, hex and short dotted forms (``0177.0.0.1``, ``0x7f.1``, ``127.1``), read as C does."""
    labels = candidate.split(".")
    if not 1 <= len(labels) <= 4 or not all(_NUMERIC_LABEL.match(label) for label in labels):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(candidate))
    except OSError:
        return None


def is_numeric_host(host: str) -> bool:
    """True when every label looks numeric: such a host is an address or an error, never a name."""
    labels = host.lower().rstrip(".").split(".")
    return all(_NUMERIC_LABEL.match(label) for label in labels)


def url_problem(url: str, *, allow_hosts: frozenset[str] | None = None) -> str | None:
    """Why ``url`` may not be called (a sentence), or None when it passes the static checks.

    The verdict of :func:`check_webhook_url`, the send-time guard itself (``allow_hosts``: the admin
    allow-list, read from the environment by default), so registration refuses exactly what sending
    would always refuse; what depends on DNS is left to send time.
    """
    try:
        check_webhook_url(url, allow_hosts=allow_hosts)
    except BlockedURLError as exc:
        shown = url if len(url) <= 200 else url[:200] + "..."
        return f"'{_printable(shown)}' cannot be called: {exc}"
    return None


def _printable(text: str) -> str:
    """``text`` with control characters shown as escapes (an error message may not carry them)."""
    return _CONTROL_CHARS.sub(lambda m: repr(m.group())[1:-1], text)


class BlockedURLError(PermanentActionError):
    """The URL or one of its addresses is not allowed (deny by default); retrying cannot help."""


def allowed_hosts(value: str | None = None) -> frozenset[str]:
    """The admin allow-list: ``AUTOMATION_WEBHOOK_ALLOW_HOSTS`` (or ``value``), normalised."""
    text = os.environ.get(ALLOW_HOSTS_ENV, "") if value is None else value
    hosts = set()
    for item in text.split(","):
        entry = item.strip().lower().rstrip(".")
        if not entry:
            continue
        address = parse_ip_host(entry)
        hosts.add(str(address) if address is not None else normalize_host(entry))
    return frozenset(hosts)


def normalize_host(host: str) -> str:
    """Lower-case ASCII (IDNA) form of a host name; literal addresses in their canonical text."""
    text = host.strip().rstrip(".")
    if not text or len(text) > MAX_HOST_LENGTH:
        raise BlockedURLError(f"host name '{host[:80]}' is empty or too long")
    address = parse_ip_host(text)
    if address is not None:
        return str(address)
    try:
        ascii_host = text.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise BlockedURLError(f"host name '{host[:80]}' is not a valid (IDNA) name") from None
    if not _HOST_CHARS.match(ascii_host) or len(ascii_host) > MAX_HOST_LENGTH:
        raise BlockedURLError(f"host name '{host[:80]}' has characters a host may not have")
    if is_numeric_host(ascii_host):
        raise BlockedURLError(f"host '{host[:80]}' is neither a name nor a valid address")
    return ascii_host


@dataclass(frozen=True)
class WebhookTarget:
    """A URL that passed the static checks: where to connect and what to call the host."""

    url: str
    scheme: str
    host: str
    port: int
    allow_listed: bool


def check_webhook_url(url: str, *, allow_hosts: frozenset[str] | None = None) -> WebhookTarget:
    """Static checks of an outbound URL (no I/O): raise :class:`BlockedURLError` or return the target.

    The one static policy, at registration (:func:`url_problem`) and at send time: https only, unless
    the host is allow-listed (then http too, and any port); no whitespace, control characters or
    backslashes; no credentials in the URL; IDNA-normalised host, and a numeric one must be a valid
    address; literal addresses (in any notation the C resolver accepts) must be public, and
    ``localhost``, internal suffixes (``.internal``, ``.local``, ...) and single-label names are
    refused, unless allow-listed; ports 443 and 8443 (any for allow-listed hosts); length caps.
    """
    allow = allowed_hosts() if allow_hosts is None else allow_hosts
    if len(url) > MAX_URL_LENGTH:
        raise BlockedURLError(f"URL is longer than {MAX_URL_LENGTH} characters")
    if _FORBIDDEN_URL_CHARS.search(url):
        raise BlockedURLError("URL contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        raw_host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:
        raise BlockedURLError(f"not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise BlockedURLError(f"scheme '{scheme}' is not allowed; use https")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise BlockedURLError("URL must not contain credentials; put secrets in an Airflow connection")
    if not raw_host:
        raise BlockedURLError("URL has no host")
    host = normalize_host(raw_host)
    listed = host in allow
    address = parse_ip_host(host)
    if address is not None and not listed and not is_public_address(address):
        raise BlockedURLError(f"'{host}' is not a public address")
    if address is None and not listed and (host == "localhost" or host.endswith(_INTERNAL_SUFFIXES)):
        raise BlockedURLError(f"'{host}' is an internal host name, not a public address")
    if address is None and not listed and "." not in host:
        raise BlockedURLError(f"'{host}' is a single-label (internal) host name, not a public address")
    if scheme == "http" and not listed:
        raise BlockedURLError(f"'{host}' must use https (http only for hosts an admin allows)")
    effective_port = port if port is not None else (443 if scheme == "https" else 80)
    if not listed and effective_port not in HTTPS_PORTS:
        raise BlockedURLError(
            f"port {effective_port} is not allowed (443 or 8443, unless an admin allows the host)"
        )
    return WebhookTarget(url=url, scheme=scheme, host=host, port=effective_port, allow_listed=listed)


def resolve_and_check(
    host: str,
    port: int,
    *,
    resolver: Resolver | None = None,
    allow_private_hosts: frozenset[str] = frozenset(),
) -> list[IPAddress]:
    """Every address ``host`` resolves to, once; :class:`BlockedURLError` if ANY is not public.

    Hosts in ``allow_private_hosts`` (the admin allow-list) may resolve to private addresses. The
    caller must connect only to the returned addresses (never resolve again: DNS rebinding).
    """
    name = normalize_host(host)
    literal = parse_ip_host(name)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        resolve = resolver or socket.getaddrinfo
        try:
            answers = resolve(name, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise BlockedURLError(f"cannot resolve '{name}': {exc}") from None
        addresses = []
        for answer in answers:
            text = str(answer[4][0]).split("%", 1)[0]
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise BlockedURLError(f"'{name}' resolved to an unreadable address") from None
            if address not in addresses:
                addresses.append(address)
    if not addresses:
        raise BlockedURLError(f"'{name}' has no addresses")
    if name in allow_private_hosts:
        return addresses
    blocked = [a for a in addresses if not is_public_address(a)]  # the name is listed, not its answers
    if blocked:
        raise BlockedURLError(f"'{name}' resolves to {blocked[0]}, which is not a public address")
    return addresses
