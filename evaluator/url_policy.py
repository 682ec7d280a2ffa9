"""Which base URLs an endpoint may use: the hosts and networks an administrator listed in ENDPOINT_ALLOWED_HOSTS.

Checked when an endpoint is saved, before *Test connection*, and on the worker before a run calls it.
A URL passes when it is http(s) without user info, its host matches a listed name (``vllm.internal``),
wildcard (``*.gpu.internal``) or network (``10.0.0.0/8``), and every address the host resolves to is
allowed: loopback, "this host" and link-local addresses (cloud metadata at 169.254.169.254) only when a
listed network lies inside them (``127.0.0.0/8``; ``0.0.0.0/0`` does not open them), and, for a host
not listed by name, only addresses inside listed networks.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from runs.messages import Message

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Addresses that reach the server itself or its cloud's metadata service: never allowed by a wider network.
SPECIAL_NETWORKS: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "0.0.0.0/8",
        "169.254.0.0/16",
        "100.100.100.200/32",  # loopback, "this host", link-local, Alibaba metadata
        "::1/128",
        "::/128",
        "fe80::/10",
        "fd00:ec2::254/128",  # the same for IPv6 (AWS metadata)
    )
)
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class UrlRefused(ValueError):
    """A base URL the site must not call; the message says why (and is safe to show to its user)."""


class HostUnresolved(UrlRefused):
    """The host is allowed by name but does not resolve from here."""


@dataclass(frozen=True)
class AllowedHosts:
    names: frozenset[str]
    suffixes: tuple[str, ...]  # ".gpu.internal" for "*.gpu.internal"
    networks: tuple[Network, ...]

    @property
    def empty(self) -> bool:
        return not (self.names or self.suffixes or self.networks)

    def name_matches(self, host: str) -> bool:
        return host in self.names or any(host.endswith(suffix) for suffix in self.suffixes)

    def address_allowed(self, address: Address, *, by_name: bool) -> bool:
        special = next((n for n in SPECIAL_NETWORKS if address.version == n.version and address in n), None)
        if special is not None:
            return any(n.version == special.version and address in n and n.subnet_of(special) for n in self.networks)
        return by_name or any(address in n for n in self.networks if n.version == address.version)


def allowed_hosts_parse(entries) -> AllowedHosts:
    """ENDPOINT_ALLOWED_HOSTS as names, wildcard suffixes and networks; ValueError names a bad entry."""
    names, suffixes, networks = set(), [], []
    for raw in entries:
        entry = str(raw).strip().lower().rstrip(".")
        if not entry:
            continue
        if entry in LOOPBACK_NAMES:
            names.add(entry)
            networks += [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        if entry.startswith("*."):
            suffix = entry[1:]
            if not _is_host_name(suffix[1:]):
                raise ValueError(f"ENDPOINT_ALLOWED_HOSTS: {raw!r} is not a host name, *.suffix or network")
            suffixes.append(suffix)
        elif _is_host_name(entry):
            names.add(entry)
        else:
            raise ValueError(f"ENDPOINT_ALLOWED_HOSTS: {raw!r} is not a host name, *.suffix or network")
    return AllowedHosts(names=frozenset(names), suffixes=tuple(suffixes), networks=tuple(networks))


def _is_host_name(text: str) -> bool:
    labels = text.split(".")
    return (
        bool(text)
        and len(text) <= 253
        and all(
            0 < len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum() and label.isascii()
            for label in labels
        )
    )


def allowed_hosts() -> AllowedHosts:
    try:
        return allowed_hosts_parse(settings.ENDPOINT_ALLOWED_HOSTS)
    except ValueError:  # `manage.py check` names the entry (config.E103); a user only learns nothing is allowed
        raise UrlRefused(Message("endpoint.hosts_unreadable")) from None


def allowed_hosts_text() -> str:
    """The allowed list as the endpoint form shows it."""
    return ", ".join(str(entry) for entry in settings.ENDPOINT_ALLOWED_HOSTS)


def _not_allowed(host: str) -> UrlRefused:
    if allowed_hosts().empty:
        return UrlRefused(Message("endpoint.no_host_allowed"))
    return UrlRefused(Message("endpoint.host_not_allowed", host=host, allowed=allowed_hosts_text()))


def url_check(url: str) -> None:
    """Raise UrlRefused unless ``url`` may be called (see the module docstring). Resolves the host name."""
    if any(c.isspace() or not c.isprintable() for c in url or ""):
        raise UrlRefused(Message("endpoint.url_invalid"))
    try:
        parts = urlsplit(url or "")
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UrlRefused(Message("endpoint.url_invalid")) from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused(Message("endpoint.url_scheme"))
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UrlRefused(Message("endpoint.url_credentials"))
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRefused(Message("endpoint.url_no_host"))
    policy = allowed_hosts()
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if not policy.address_allowed(_plain(literal), by_name=False):
            raise _not_allowed(host)
        return
    by_name = policy.name_matches(host)
    if not by_name and not policy.networks:
        raise _not_allowed(host)  # no network could allow it: no need to ask the resolver
    addresses = _resolve(host, port)
    if not addresses:
        if by_name:
            raise HostUnresolved(Message("endpoint.host_unresolved", host=host))
        raise _not_allowed(host)
    if not all(policy.address_allowed(address, by_name=by_name) for address in addresses):
        raise _not_allowed(host)


def _plain(address: Address) -> Address:
    """::ffff:127.0.0.1 reaches 127.0.0.1: judge it as that."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _resolve(host: str, port: int) -> list[Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    addresses = []
    for info in infos:
        try:
            addresses.append(_plain(ipaddress.ip_address(info[4][0].split("%")[0])))
        except ValueError:
            continue
    return addresses
