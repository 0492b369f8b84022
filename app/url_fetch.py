"""Image URLs (`{"url": ...}` inputs, where the operator allows them): fetched from public http(s)
addresses only, every hop resolved and checked, the connection pinned to the checked address,
the download bounded in time and bytes. See SECURITY.md.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable

import httpx

from app.errors import InvalidInput

MAX_REDIRECTS = 3
Resolver = Callable[[str, int], Awaitable[list[str]]]


def is_public_address(address: str) -> bool:
    """True only for globally routable unicast addresses (IPv4 inside IPv6 unwrapped).

    Fails closed: anything that is not an IP address in standard form is not public.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:  # fec0::/10: deprecated, but still routed privately where in use
            return False
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


_NUMBER = re.compile(r"(0[xX][0-9a-fA-F]*|[0-9]+)")


def is_nonstandard_ipv4(host: str) -> bool:
    """`2130706433`, `0x7f.0.0.1`, `127.1`, `0`: hosts that URL parsers and `inet_aton` read as
    IPv4 addresses (the last label is a number) but are not a plain dotted quad."""
    labels = host.rstrip(".").split(".")
    if not _NUMBER.fullmatch(labels[-1]):
        return False
    try:
        return str(ipaddress.IPv4Address(host)) != host
    except ValueError:
        return True


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class UrlFetcher:
    """Fetches image bytes from public http(s) URLs only.

    Every hop (the URL and each redirect) is resolved and *every* address it resolves to must
    be public; the connection then goes to that checked address (Host header and TLS SNI keep
    the name), so a second DNS answer cannot swap in a private target.
    """

    def __init__(
        self,
        *,
        enabled: bool,
        timeout_s: float,
        max_bytes: int,
        resolver: Resolver = system_resolver,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.enabled = enabled
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self._resolver = resolver
        self._transport = transport

    async def fetch(self, url: str, where: str) -> bytes:
        if not self.enabled:
            raise InvalidInput(
                f'{where}: "url" inputs are disabled on this server (PCCLIP_ALLOW_URL_FETCH); '
                'send the image as "b64" or a multipart upload'
            )
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._fetch(url, where)
        except TimeoutError:
            raise InvalidInput(f"{where}: fetching {url} took longer than {self.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise InvalidInput(f"{where}: could not fetch {url} ({exc})") from None

    async def _fetch(self, url: str, where: str) -> bytes:
        # trust_env=False: no proxy variables or .netrc; the connection goes to the checked address.
        async with httpx.AsyncClient(
            transport=self._transport, follow_redirects=False, timeout=self.timeout_s, trust_env=False
        ) as client:
            target = self._parse(url, where)
            for _ in range(MAX_REDIRECTS + 1):
                request = await self._pinned_request(client, target, where)
                response = await client.send(request, stream=True)
                try:
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        target = self._parse(str(target.join(location)), where)
                        continue
                    if response.status_code != 200:
                        raise InvalidInput(f"{where}: fetching {target} answered HTTP {response.status_code}")
                    return await self._read_bounded(response, where)
                finally:
                    await response.aclose()
            raise InvalidInput(f"{where}: more than {MAX_REDIRECTS} redirects from {url}")

    def _parse(self, url: str, where: str) -> httpx.URL:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise InvalidInput(f"{where}: invalid URL ({exc})") from None
        if parsed.scheme not in ("http", "https"):
            raise InvalidInput(f"{where}: only http and https URLs are fetched, not {parsed.scheme or 'none'!r}")
        if not parsed.host:
            raise InvalidInput(f"{where}: URL has no host")
        if is_nonstandard_ipv4(parsed.host):
            raise InvalidInput(f"{where}: {parsed.host!r} is an IPv4 address in a non-standard form; refused")
        if parsed.userinfo:
            raise InvalidInput(f"{where}: URLs with credentials are not accepted")
        return parsed

    async def _pinned_request(self, client: httpx.AsyncClient, url: httpx.URL, where: str) -> httpx.Request:
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = await self._resolver(url.host, port)
        except OSError as exc:
            raise InvalidInput(f"{where}: cannot resolve {url.host} ({exc})") from None
        if not addresses:
            raise InvalidInput(f"{where}: {url.host} resolves to no address")
        for address in addresses:
            if not is_public_address(address):
                raise InvalidInput(
                    f"{where}: {url.host} resolves to {address}, a private, loopback, "
                    "link-local or reserved address; refused"
                )
        pinned = url.copy_with(host=addresses[0])
        host_header = url.host if url.port is None else f"{url.host}:{url.port}"
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        # identity: a compressed body could expand far beyond `max_bytes` in one decoded chunk.
        headers = {"Host": host_header, "Accept-Encoding": "identity"}
        return client.build_request("GET", pinned, headers=headers, extensions=extensions)

    async def _read_bounded(self, response: httpx.Response, where: str) -> bytes:
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise InvalidInput(
                f"{where}: the server sent a {encoding!r}-encoded body; only unencoded images are fetched"
            )
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise InvalidInput(f"{where}: image is {declared} bytes; at most {self.max_bytes} are fetched")
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise InvalidInput(
                    f"{where}: image is over {self.max_bytes} bytes; at most {self.max_bytes} are fetched"
                )
            chunks.append(chunk)
        return b"".join(chunks)
