"""Which network addresses the service may connect out to (camera URLs; later webhooks): denied ranges, an
optional list of the only ranges allowed, and denied host names. Names are resolved, so a name cannot
stand in for a denied address.

By default link-local addresses (169.254.0.0/16, fe80::/10) and the cloud metadata endpoints
(169.254.169.254, fd00:ec2::254, metadata.google.internal) are denied; loopback and private ranges stay
allowed, because cameras live there.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pipeline.errors import ForbiddenSource, SourceUnavailable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], Sequence[str]]  # host name -> its addresses; OSError when it does not resolve

# What each default range is, for the refusal's reason.
KNOWN_RANGES = {
    "169.254.169.254/32": "the cloud metadata endpoint",
    "fd00:ec2::254/128": "the AWS metadata endpoint over IPv6",
    "169.254.0.0/16": "link-local",
    "fe80::/10": "link-local",
}
DEFAULT_DENY_CIDRS = tuple(KNOWN_RANGES)
DEFAULT_DENY_HOSTS = ("metadata.google.internal",)


def system_resolver(host: str) -> list[str]:
    """The addresses the system resolver gives `host` (what FFmpeg will connect to)."""
    return sorted({info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})


def parse_networks(cidrs: Sequence[str]) -> tuple[IPNetwork, ...]:
    """('10.0.0.0/8', '169.254.169.254') -> networks; ValueError naming the first that is not a CIDR."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{cidr!r} is not an IP address or CIDR range (e.g. 10.0.0.0/8, fe80::/10)") from None
    return tuple(networks)


@dataclass(frozen=True)
class AddressPolicy:
    """An address is refused when it is in a denied range, or when allowed ranges are given and it is in
    none of them (deny wins). A host name is refused when it is denied by name or any of its addresses is."""

    deny_cidrs: tuple[str, ...] = DEFAULT_DENY_CIDRS
    allow_cidrs: tuple[str, ...] = ()  # empty: any address not denied
    deny_hosts: tuple[str, ...] = DEFAULT_DENY_HOSTS
    resolve: Resolver = field(default=system_resolver, repr=False, compare=False)
    _deny: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)
    _allow: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_deny", parse_networks(self.deny_cidrs))
        object.__setattr__(self, "_allow", parse_networks(self.allow_cidrs))
        object.__setattr__(self, "deny_hosts", tuple(_host_key(h) for h in self.deny_hosts))

    def refusal(self, address: IPAddress) -> str | None:
        """Why `address` is refused, or None when it is allowed."""
        mapped = getattr(address, "ipv4_mapped", None)
        candidates = (address,) if mapped is None else (address, mapped)  # ::ffff:169.254.169.254 is IPv4
        for network in self._deny:
            if any(_within(c, network) for c in candidates):
                label = KNOWN_RANGES.get(str(network))
                return f"it is in {network}{f' ({label})' if label else ''}, a denied range"
        if self._allow and not any(_within(c, n) for c in candidates for n in self._allow):
            return f"it is in none of the allowed ranges ({', '.join(str(n) for n in self._allow)})"
        return None

    def check(self, host: str) -> None:
        """Refuse (ForbiddenSource, with the reason) a host that is, or resolves to, a refused address;
        SourceUnavailable when the name does not resolve (nothing can be said about it yet)."""
        key = _host_key(host)
        if key in self.deny_hosts:
            raise ForbiddenSource(f"host {host} is denied: it is a cloud metadata endpoint")
        literal = _literal_address(key)
        if literal is not None:
            if reason := self.refusal(literal):
                raise ForbiddenSource(f"address {literal} is not allowed: {reason}")
            return
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in self.resolve(key)]
        except (OSError, UnicodeError, ValueError) as error:
            raise SourceUnavailable(f"host {host} does not resolve: {error}") from None
        for address in addresses:
            if reason := self.refusal(address):
                raise ForbiddenSource(f"host {host} resolves to {address}, which is not allowed: {reason}")


def _within(address: IPAddress, network: IPNetwork) -> bool:
    return address.version == network.version and address in network


def _host_key(host: str) -> str:
    return host.strip().lower().rstrip(".")


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None
