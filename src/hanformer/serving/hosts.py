"""Host names as the server's settings and the Host header write them (no web framework needed,
so the settings can be checked without loading one)."""

from __future__ import annotations

from dataclasses import dataclass

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
# Binding these means "every interface": not a name anyone reaches the server by.
WILDCARD_ADDRESSES = ("", "0.0.0.0", "::")
ANY_HOST = "*"


@dataclass(frozen=True)
class HostAddress:
    name: str
    port: int | None


def parse_host(value: str) -> HostAddress | None:
    """`name[:port]` as in a Host header (`[v6]:port` for IPv6); None when it is not one."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else None
    else:
        name, colon, port_text = value.partition(":")
        if not colon:
            port_text = None
        elif ":" in port_text:
            name, port_text = value, None  # a bare IPv6 address (a setting, never a Host header)
    if port_text is not None and not (port_text.isdigit() and len(port_text) <= 5):
        return None
    name = name.rstrip(".")  # "localhost." is localhost
    if not name or any(c.isspace() or c in "/@?#" for c in name):
        return None
    return HostAddress(name, int(port_text) if port_text is not None else None)


def check_allowed_hosts(entries: list[str]) -> str | None:
    """Why an `allowed_hosts` entry cannot be used, or None when they all can."""
    for entry in entries:
        if entry != ANY_HOST and parse_host(entry) is None:
            return (f"allowed_hosts entry {entry!r} is not a host name: give names like example.org or "
                    "example.org:8000, without http:// or a path")
    return None
