"""The sandbox's only network traffic of its own: webhook POSTs, and only to this machine's loopback.

A sandbox is a development tool; whatever URL a webhook endpoint names, nothing it sends may leave the
machine. Hosts must be loopback addresses or `localhost`; the connection goes to the address checked, so
a name cannot resolve differently between the check and the send.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

MAX_RESPONSE_BYTES = 64 * 1024


class NotLoopback(ValueError):
    """A URL or host that would reach beyond this machine."""


def is_loopback_host(host: str) -> bool:
    """Tell whether every address `host` stands for is a loopback address (127.0.0.0/8, ::1)."""
    try:
        return bool(loopback_addresses(host))
    except NotLoopback:
        return False


def loopback_addresses(host: str) -> list[str]:
    """Return the loopback addresses of `host`, or raise NotLoopback.

    Only IP literals and `localhost` names are accepted: any other name would need a DNS query, which
    is itself traffic leaving the machine.
    """
    host = host.strip("[]").lower()
    try:
        literal = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        literal = None
    if literal is not None:
        if not literal.is_loopback:
            raise NotLoopback(f"{host!r} is not a loopback address")
        return [host]
    if host != "localhost" and not host.endswith(".localhost"):
        raise NotLoopback(f"{host!r} is neither a loopback address nor localhost")
    return _resolved_loopback(host)


def _resolved_loopback(name: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise NotLoopback(f"{name!r} does not resolve") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise NotLoopback(f"{name!r} resolves beyond loopback")
    return addresses


def check_url(url: str) -> SplitResult:
    """Return the parts of an http:// URL on loopback, or raise NotLoopback saying what is wrong.

    Plain http only: TLS to a loopback receiver would need its certificate checked against a name we
    deliberately do not connect to, and Stripe accepts http endpoints in test mode anyway.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise NotLoopback(f"{url!r} is not an http:// URL")
    try:
        parts.port  # noqa: B018 (urlsplit checks the port only when asked)
    except ValueError:
        raise NotLoopback(f"{url!r} has an invalid port") from None
    loopback_addresses(parts.hostname)
    return parts


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST `body` to a loopback URL and return the HTTP status; raise OSError when nothing answers."""
    parts = check_url(url)
    address = loopback_addresses(parts.hostname or "")[0]
    connection = http.client.HTTPConnection(address, parts.port, timeout=timeout)
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    try:
        connection.request("POST", target, body=body, headers={"Host": parts.netloc, **headers})
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        return response.status
    except http.client.HTTPException as error:
        raise OSError(f"bad HTTP answer from {url}: {error!r}") from error
    finally:
        connection.close()
