"""Where webhooks may go: http(s) URLs whose host resolves only to public addresses.

A callback URL is chosen by an API client, so without a guard Docket could be
made to POST into its own network (the database, a cloud metadata endpoint).
:func:`resolve_target` resolves the host once and refuses private, loopback,
link-local and shared addresses unless ``DOCKET_WEBHOOK_ALLOW_PRIVATE`` is
set; multicast, unspecified and reserved addresses are always refused. The
delivery then connects to an address checked here, not to a second lookup,
so a DNS answer that changes in between cannot slip past the check.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from service.exceptions import InvalidRequest, WebhookRefused

SCHEMES = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2000  # the column's size

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    """A vetted destination: connect to one of ``addresses`` (in order), send ``Host: host_header`` and ``path``."""

    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]
    path: str

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == SCHEMES[self.scheme] else f"{name}:{self.port}"


def check_url(url: str) -> str:
    """*url* if it can be a callback URL at all (scheme, host, port, no credentials); else InvalidRequest.

    This is only the syntax: whether its host may be reached is decided at
    each delivery, because DNS answers change.
    """
    url = (url or "").strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise InvalidRequest(f"A webhook URL is 1 to {MAX_URL_LENGTH} characters.")
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise InvalidRequest(f"A webhook URL starts with http:// or https://; got {parts.scheme or 'no scheme'}.")
    if not parts.hostname:
        raise InvalidRequest("A webhook URL names a host, e.g. https://erp.example.com/docket.")
    if parts.username or parts.password:
        raise InvalidRequest("A webhook URL carries no user name or password; deliveries are signed instead.")
    try:
        parts.port
    except ValueError:
        raise InvalidRequest("The webhook URL's port is not a number from 1 to 65535.") from None
    return url


def refusal(address: Address, allow_private: bool) -> str | None:
    """Why *address* may not be sent to, or None when it may (the order matters: ::1 is also "reserved")."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    checks = (("multicast", False), ("unspecified", False), ("loopback", allow_private), ("reserved", False),
              ("link_local", allow_private), ("private", allow_private))
    for kind, allowed in checks:
        if getattr(address, f"is_{kind}"):
            return None if allowed else f"a {kind.replace('_', '-')} address"
    if address.is_global or allow_private:
        return None
    return "not a public address"


def resolve_target(url: str, allow_private: bool) -> Target:
    """The vetted address to deliver *url* to, or :class:`WebhookRefused` saying why not.

    Every address the host resolves to must pass; one private answer among
    public ones is refused too. A host that does not resolve raises
    ``socket.gaierror`` (a delivery failure worth retrying, not a refusal).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise WebhookRefused(f"Webhooks go to http:// or https:// URLs only, not {scheme or 'no scheme'}.")
    if not parts.hostname:
        raise WebhookRefused("The webhook URL names no host.")
    try:
        port = parts.port or SCHEMES[scheme]
    except ValueError:
        raise WebhookRefused("The webhook URL's port is not valid.") from None
    host = parts.hostname
    addresses: list[Address] = []
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError:
        raise WebhookRefused(f"The webhook URL's host {host!r} is not a valid host name.") from None
    for *_, sockaddr in answers:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise WebhookRefused(f"{host} resolves to no address.")
    for address in addresses:
        reason = refusal(address, allow_private)
        if reason:
            raise WebhookRefused(f"{host} resolves to {address}, {reason}; Docket does not send webhooks there "
                                 "(DOCKET_WEBHOOK_ALLOW_PRIVATE=true allows private and loopback addresses).")
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return Target(scheme, host, port, tuple(str(a) for a in addresses), path)
