"""The SSRF matrix (docs/definitions.md, "Webhooks"): internal targets refused in every notation; public
ones accepted."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import httpcore
import pytest
from rule_engine.hooks.webhook_client import send_webhook

from rule_compiler.errors import PermanentActionError
from rule_compiler.netpolicy import (
    BlockedURLError,
    allowed_hosts,
    check_webhook_url,
    parse_ip_host,
    resolve_and_check,
)
from rule_compiler.runtime.webhook_requests import join_url
from tests.security.receiver import Reply, running_receiver

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


def resolver_for(*answers: str) -> Any:
    calls: list[str] = []

    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        calls.append(host)
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers
        ]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


NO_DNS = resolver_for()  # literal addresses never reach the resolver

INTERNAL_URLS = [
    "https://127.0.0.1/",
    "https://localhost/",
    "https://api.localhost/",
    "https://metadata.internal/",
    "https://10.0.0.1/",
    "https://172.16.5.4/",
    "https://192.168.1.1/",
    "https://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/",
    "https://224.0.0.1/",
    "https://0.0.0.0/",
    "https://[::1]/",
    "https://[::ffff:169.254.169.254]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[2002:a9fe:a9fe::1]/",
    "https://[::127.0.0.1]/",
    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # teredo around 192.0.2.45
    "https://[fe80::1]/",
    "https://[fc00::1]/",
    "https://2130706433/",  # decimal 127.0.0.1
    "https://0177.0.0.1/",  # octal
    "https://0x7f.0.0.1/",  # hex
    "https://0x7f000001/",
    "https://127.1/",
    "https://0xa9.0xfe.0xa9.0xfe/",
    "https://2852039166/",  # decimal 169.254.169.254
]


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_internal_targets_are_refused(url: str) -> None:
    with pytest.raises(BlockedURLError):
        target = check_webhook_url(url, allow_hosts=frozenset())
        resolve_and_check(target.host, target.port, resolver=NO_DNS)


@pytest.mark.parametrize(
    "url",
    [
        "https://good.example@evil.example/",
        "https://user:pass@api.example.com/",
        "http://api.example.com/",  # http only for allow-listed hosts
        "file:///etc/passwd",
        "gopher://api.example.com/",
        "ftp://api.example.com/",
        "https://api.example.com:22/",  # port not allowed
        "https://api.example.com:6379/",
        "https://api.example.com\\@evil.example/",
        "https://api.example.com/a b",
        "https:///nohost",
        "https://" + "a" * 300 + ".example/",
        "https://api.example.com/" + "x" * 2100,
        "https://999.1.1.1/",  # numeric, yet not an address
        "https://exa mple.com/",
    ],
)
def test_malformed_or_disallowed_urls_are_refused(url: str) -> None:
    with pytest.raises(BlockedURLError):
        check_webhook_url(url, allow_hosts=frozenset())


def test_numeric_notations_parse_as_the_c_resolver_reads_them() -> None:
    loopback = ipaddress.IPv4Address("127.0.0.1")
    for text in ("2130706433", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001", "127.1", "127.0.1"):
        assert parse_ip_host(text) == loopback, text
    assert parse_ip_host("api.example.com") is None


def test_idna_host_is_normalised() -> None:
    target = check_webhook_url("https://BÜCHER.example/hook", allow_hosts=frozenset())
    assert target.host == "xn--bcher-kva.example" and target.port == 443


def test_any_private_answer_refuses_the_host() -> None:
    resolver = resolver_for(PUBLIC_V4, "10.0.0.7")
    with pytest.raises(BlockedURLError, match=r"10\.0\.0\.7"):
        resolve_and_check("api.example.com", 443, resolver=resolver)
    with pytest.raises(BlockedURLError):
        resolve_and_check("api.example.com", 443, resolver=resolver_for("::ffff:10.0.0.7"))
    with pytest.raises(BlockedURLError):
        resolve_and_check("api.example.com", 443, resolver=resolver_for())


def test_public_host_is_accepted() -> None:
    target = check_webhook_url("https://api.example.com/hooks/orders?x=1", allow_hosts=frozenset())
    assert (target.host, target.port, target.allow_listed) == ("api.example.com", 443, False)
    resolver = resolver_for(PUBLIC_V4, PUBLIC_V6)
    addresses = resolve_and_check(target.host, target.port, resolver=resolver)
    assert [str(a) for a in addresses] == [PUBLIC_V4, PUBLIC_V6]
    assert check_webhook_url("https://api.example.com:8443/", allow_hosts=frozenset()).port == 8443


def test_allow_list_admits_private_hosts_http_and_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATION_WEBHOOK_ALLOW_HOSTS", " 127.0.0.1, Hooks.Corp.Example ,")
    allow = allowed_hosts()
    assert allow == frozenset({"127.0.0.1", "hooks.corp.example"})
    assert check_webhook_url("http://127.0.0.1:8080/x", allow_hosts=allow).allow_listed
    assert resolve_and_check("127.0.0.1", 8080, allow_private_hosts=allow) == [
        ipaddress.IPv4Address("127.0.0.1")
    ]
    resolved = resolve_and_check(
        "hooks.corp.example", 80, resolver=resolver_for("10.1.2.3"), allow_private_hosts=allow
    )
    assert [str(a) for a in resolved] == ["10.1.2.3"]
    with pytest.raises(BlockedURLError):  # the allow-list is exact, not a suffix match
        resolve_and_check(
            "x.hooks.corp.example", 443, resolver=resolver_for("10.1.2.3"), allow_private_hosts=allow
        )


def test_path_cannot_change_the_authority() -> None:
    assert (
        join_url("https://api.example.com/v1", "/hooks/orders") == "https://api.example.com/v1/hooks/orders"
    )
    assert join_url("https://api.example.com", "@evil.example/x") == "https://api.example.com/@evil.example/x"
    for path in ("//evil.example/x", "https://evil.example/x", "\\\\evil.example\\x", "javascript:alert(1)"):
        with pytest.raises(PermanentActionError):
            join_url("https://api.example.com", path)
    url = join_url("https://api.example.com", "@evil.example/x")
    assert check_webhook_url(url, allow_hosts=frozenset()).host == "api.example.com"


class RecordingBackend(httpcore.NetworkBackend):
    """Stands in for the network: records where the transport tried to connect, connects nowhere."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []

    def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        self.connects.append((host, port))
        raise httpcore.ConnectError("no network in tests")


def test_dns_rebinding_connects_only_to_the_checked_address() -> None:
    """The resolver answers public first, loopback afterwards: the transport never asks again."""
    with running_receiver() as receiver:
        answers = iter([[PUBLIC_V4], ["127.0.0.1"], ["127.0.0.1"]])
        calls: list[str] = []

        def rebinding(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
            calls.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in next(answers)]

        backend = RecordingBackend()
        with pytest.raises(Exception, match="connection failed"):
            send_webhook(
                method="POST",
                url="https://rebind.example/hook",
                headers={},
                body="{}",
                resolver=rebinding,
                allow_hosts=frozenset(),
                network_backend=backend,
            )
        assert calls == ["rebind.example"]
        assert backend.connects == [(PUBLIC_V4, 443)]
        assert receiver.requests == []


def test_private_answer_sends_no_byte() -> None:
    with running_receiver() as receiver:
        with pytest.raises(BlockedURLError):
            send_webhook(
                method="POST",
                url=f"https://internal.example:{receiver.port}/hook",
                headers={},
                body="{}",
                resolver=resolver_for("127.0.0.1"),
                allow_hosts=frozenset(),
            )
        assert receiver.requests == []


def test_redirect_to_an_internal_address_is_not_followed() -> None:
    with running_receiver() as receiver:
        receiver.replies.append(Reply(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"}))
        response = send_webhook(
            method="POST",
            url=f"{receiver.base_url}/hook",
            headers={},
            body="{}",
            allow_hosts=frozenset({"127.0.0.1"}),
        )
        assert response.status == 302
        assert len(receiver.requests) == 1
