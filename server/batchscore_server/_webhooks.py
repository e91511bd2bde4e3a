"""Signed webhooks: the allow-list of callback hosts, Standard Webhooks signing, and the dispatcher of the outbox.

Events are written to ``webhook_deliveries`` by the store in the transaction that ends a batch (see
``Store.webhook_payload``), so none is lost to a crash; the :class:`Dispatcher` of each replica claims the due ones
(a lease on each), sends them and records every attempt. Everything it needs is in the database: a delivery that was
due when the server stopped goes out after its restart.

A callback must never become a way into the server's network: its host must match an admin's ``--webhook-allow``
pattern at start and again at each attempt, and a host matched by a wildcard is refused when it resolves to a
private, loopback, link-local, multicast or reserved address. The request goes to the address that was checked
(not to a second lookup, which DNS rebinding could answer differently), follows no redirect, and waits 10 s at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from batchscore_server._errors import ApiError
from batchscore_server._store import Store
from batchscore_server._webhook_rules import signed_headers

log = logging.getLogger("batchscore_server.webhooks")

SEND_TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 4096  # of a receiver's answer, read for lastError only
POLL_SECONDS = 1.0  # how often the dispatcher looks for due deliveries
CLAIM_LIMIT = 16  # deliveries sent at once by one replica
LEASE_SECONDS = 60.0  # a claimed delivery's lease: longer than a send can take
MAX_CALLBACK_URL = 2048


# -- the allow-list -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostPattern:
    """One ``--webhook-allow`` pattern: a host, ``*.domain`` or ``*``, and an optional ``:port``.

    Hosts: ``hooks.example.com``, ``127.0.0.1``, ``[::1]``; ``*.example.com`` matches any subdomain (not the
    domain itself), ``*`` any host.

    A pattern naming one host exactly is the admin's explicit choice: that host is reached even when it is a
    private or loopback address. A wildcard only ever reaches public addresses.
    """

    host: str  # lower case, without brackets; "*" any host; "*.example.com" any subdomain
    port: int | None

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        """Read a pattern.

        Raises:
            ValueError: It is empty or its port is not a number.

        """
        text = text.strip().lower()
        host, port = text, None
        if text.startswith("["):  # [v6]:port
            end = text.find("]")
            host, rest = text[1:end], text[end + 1 :]
            port = _port(rest[1:], text) if rest.startswith(":") else None
        elif text.count(":") == 1:
            host, _, port_text = text.partition(":")
            port = _port(port_text, text)
        wildcard_ok = host == "*" or "*" not in (host[2:] if host.startswith("*.") else host)
        if not host or not wildcard_ok:
            raise ValueError(f"not a host pattern: {text!r}")
        return cls(host, port)

    @property
    def explicit(self) -> bool:
        """Whether it names one host (no wildcard)."""
        return "*" not in self.host

    def matches(self, host: str, port: int) -> bool:
        """Whether it allows ``host`` (lower case, without brackets) on ``port``."""
        if self.port is not None and self.port != port:
            return False
        if self.host == "*":
            return True
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host


def _port(text: str, pattern: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"bad port in host pattern {pattern!r}")
    return int(text)


class AllowList:
    """The server's ``--webhook-allow`` patterns (none: no callback is allowed)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = [HostPattern.parse(p) for p in patterns if p.strip()]

    def match(self, url: str) -> HostPattern | None:
        """The first pattern that allows ``url``'s host and port, or None (also for a URL that is not http(s))."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            return None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            return None
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        host = parsed.host.lower().rstrip(".")
        return next((p for p in self.patterns if p.matches(host, port)), None)

    def check(self, url: str) -> None:
        """Refuse a ``callbackUrl`` this server may not call.

        Raises:
            ApiError: 400 naming ``callbackUrl``: not an absolute http(s) URL, too long, or a host no pattern allows.

        """
        if len(url) > MAX_CALLBACK_URL:
            raise ApiError(400, f"callbackUrl must be at most {MAX_CALLBACK_URL} characters", "callbackUrl")
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            raise ApiError(400, "callbackUrl is not a URL", "callbackUrl") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ApiError(400, "callbackUrl must be an absolute http or https URL", "callbackUrl")
        if parsed.userinfo:
            raise ApiError(400, "callbackUrl must not hold a user name or password", "callbackUrl")
        if self.match(url) is None:
            raise ApiError(
                400,
                f"callbackUrl: host {parsed.host!r} is not allowed by this server (its admin allows callback hosts "
                "with serve --webhook-allow)",
                "callbackUrl",
            )


def forbidden_address(address: str) -> bool:
    """Whether an IP address is one a wildcard-matched callback must not reach (anything but a public unicast one)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


class DeliveryRefused(Exception):
    """The callback may not be called (its message becomes the attempt's lastError)."""


async def checked_addresses(url: httpx.URL, pattern: HostPattern) -> list[str]:
    """The addresses to connect to for ``url``, in order: resolved once, checked unless ``pattern`` names the host.

    Raises:
        DeliveryRefused: The host does not resolve, or resolves to an address a wildcard may not reach.

    """
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise DeliveryRefused(f"cannot resolve {host}: {error}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise DeliveryRefused(f"cannot resolve {host}")
    if not pattern.explicit:
        # Every address is checked, not just the one used: a name that also resolves inward is refused outright.
        bad = [a for a in addresses if forbidden_address(a)]
        if bad:
            raise DeliveryRefused(
                f"refused: {host} resolves to {bad[0]}, a private, loopback, link-local, multicast or reserved address "
                "(only a --webhook-allow pattern naming the host exactly may reach one)"
            )
    return addresses


# -- the dispatcher -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How one attempt went: the receiver's status (None: no answer) and the error (None: delivered)."""

    status: int | None
    error: str | None


class Dispatcher:
    """Sends the due deliveries of the outbox, on the event loop, until closed.

    Args:
        store: The store (claims, attempts).
        allow: The allow-list, checked again at each attempt (it may have changed since the batch started).
        replica_id: This replica's lease owner name.
        shared_database: Whether other replicas share the database (else leases left by a stopped server go at once).

    """

    def __init__(self, store: Store, allow: AllowList, replica_id: str, shared_database: bool) -> None:
        self._store = store
        self._allow = allow
        self._replica = replica_id
        self._shared = shared_database
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        """Start sending (in a task of the running loop)."""
        # No redirects, no proxy from the environment (the request must go to the address that was checked).
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=SEND_TIMEOUT_SECONDS)
        if not self._shared:
            await asyncio.to_thread(self._store.release_webhook_leases)
        self._task = asyncio.create_task(self._run(), name="webhook-dispatcher")

    async def close(self) -> None:
        """Stop sending; a delivery being sent keeps its lease and is sent again after it expires."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        while True:
            due: list[dict[str, Any]] = []
            try:
                due = await asyncio.to_thread(
                    self._store.claim_webhook_deliveries, self._replica, CLAIM_LIMIT, LEASE_SECONDS
                )
                await asyncio.gather(*(self._deliver(delivery) for delivery in due))
            except Exception:  # the database was unreachable a moment: try again at the next round
                log.exception("webhook dispatch failed")
            if len(due) < CLAIM_LIMIT:
                await asyncio.sleep(POLL_SECONDS)

    async def _deliver(self, delivery: Mapping[str, Any]) -> None:
        try:
            outcome = await asyncio.wait_for(self._send(delivery), SEND_TIMEOUT_SECONDS)
        except TimeoutError:
            outcome = Outcome(None, f"no answer within {SEND_TIMEOUT_SECONDS:.0f} s")
        await asyncio.to_thread(
            self._store.record_webhook_attempt, delivery["id"], self._replica, outcome.status, outcome.error
        )

    async def _send(self, delivery: Mapping[str, Any]) -> Outcome:
        assert self._client is not None
        url = httpx.URL(delivery["url"])
        pattern = self._allow.match(delivery["url"])
        if pattern is None:
            return Outcome(None, f"refused: host {url.host} is not allowed by this server's --webhook-allow")
        try:
            addresses = await checked_addresses(url, pattern)
        except DeliveryRefused as refused:
            return Outcome(None, str(refused))
        body = delivery["payload"].encode()
        headers = signed_headers(delivery["secrets"], delivery["id"], int(time.time()), body)
        headers["content-type"] = "application/json"
        headers["user-agent"] = "batchscore-webhooks"
        # The connection goes to the checked address; the Host header and TLS (SNI and the certificate's name)
        # still name the host.
        headers["host"] = url.netloc.decode("ascii")
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        failure = "no address"
        for address in addresses:  # the next one only when this one refuses the connection (localhost: ::1 first)
            try:
                async with self._client.stream(
                    "POST", url.copy_with(host=address), content=body, headers=headers, extensions=extensions
                ) as response:
                    head = await _read_some(response)
                break
            except httpx.ConnectError as error:
                failure = f"{type(error).__name__} ({address}): {error}"[:500]
            except httpx.HTTPError as error:
                return Outcome(None, f"{type(error).__name__}: {error}"[:500])
        else:
            return Outcome(None, failure)
        if 200 <= response.status_code < 300:
            return Outcome(response.status_code, None)
        text = head.decode("utf-8", "replace").strip()[:200]
        return Outcome(response.status_code, f"the receiver answered {response.status_code}: {text}".strip(": "))


async def _read_some(response: httpx.Response) -> bytes:
    """The first few KB of an answer (a receiver may send megabytes; only lastError shows any of it)."""
    head = b""
    async for chunk in response.aiter_raw():
        head += chunk
        if len(head) >= MAX_RESPONSE_BYTES:
            break
    return head[:MAX_RESPONSE_BYTES]
