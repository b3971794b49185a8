"""Who may ask: only this machine's own names for the server, and for changes, only pages of that same origin.

Why a module of its own: every /nodes-stats route exposes absolute paths, and some move the user's files, so
a page on another site must get nothing. Browsers already keep other sites' pages from reading our answers
and attach an `Origin` to what they send, but DNS rebinding defeats an Origin-only check: a page of
`evil.example` whose name now points at 127.0.0.1 sends `Host` and `Origin` both `evil.example`, and they
agree. So the `Host` itself must be one of this server's names: a loopback name or address, an address
ComfyUI listens on (with `--listen 0.0.0.0`, any address of this machine: an IP literal cannot be rebound),
this machine's own host name (and its `.local` mDNS name: a page of another site cannot carry it), or a name
the user lists in USAGE_STATS_ALLOWED_HOSTS (a reverse proxy's), each with ComfyUI's port.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

ALLOWED_HOSTS_VARIABLE = "USAGE_STATS_ALLOWED_HOSTS"
"""Extra host names (comma-separated, e.g. a reverse proxy's `comfy.example.lan`, or `name:port`) to answer."""
LOOPBACK_NAMES = frozenset({"localhost"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})


@dataclass(frozen=True)
class Access:
    """The server's own names: `listen` as ComfyUI's --listen gives it, `port` the port it serves, `tls` whether it
    serves HTTPS (a Host without a port then means 443), `names` the user's extra names (`name` or `name:port`),
    `machine` this machine's own host names."""

    listen: str | None
    port: int
    tls: bool = False
    names: tuple[str, ...] = ()
    machine: tuple[str, ...] = ()

    @classmethod
    def from_comfyui(cls) -> "Access":
        from comfy.cli_args import args

        extra = tuple(n.strip().lower() for n in os.environ.get(ALLOWED_HOSTS_VARIABLE, "").split(",") if n.strip())
        host = socket.gethostname().lower()  # no DNS lookup: never a wait at start
        return cls(args.listen, int(args.port), bool(getattr(args, "tls_keyfile", None)), extra, (host, f"{host}.local"))

    def host_refusal(self, host: str | None) -> str | None:
        """Why a request with this `Host` header is not for us, or None when it is."""
        name, port = split_host(host, 443 if self.tls else 80)
        if name is None:
            return f"refused: the Host header {host!r} is not a host name"
        if f"{name}:{port}" in self.names or (name in self.names and port == self.port):
            return None
        if port != self.port:
            return f"refused: the Host header {host!r} names another port than this server's ({self.port})"
        if is_loopback(name) or name in self.machine or name in self._listen_names():
            return None
        if self._listens_everywhere() and _is_local_address(name):
            return None
        return (f"refused: {name!r} is not a name of this server (a page of another site, or DNS rebinding); "
                f"open ComfyUI at 127.0.0.1:{self.port}, or add the name to {ALLOWED_HOSTS_VARIABLE}")

    def origin_refusal(self, origin: str | None, host: str | None) -> str | None:
        """Why a change sent with this `Origin` is refused (a page of another site), or None. No Origin is a
        script or curl: browsers always send one with a POST or PUT."""
        if origin is None:
            return None
        try:
            netloc = urlsplit(origin).netloc.lower()
        except ValueError:  # e.g. "http://[::1": not an origin any page of ours sends
            netloc = None
        if origin == "null" or not host or netloc != host.lower():
            return f"refused: this request comes from another site ({origin})"
        return None

    def _listen_names(self) -> set[str]:
        return {a.strip().strip("[]").lower() for a in (self.listen or "127.0.0.1").split(",")}

    def _listens_everywhere(self) -> bool:
        return bool(self._listen_names() & WILDCARDS)


def split_host(host: str | None, default_port: int) -> tuple[str | None, int | None]:
    """(lower-case name without brackets, port) of a Host header; (None, None) when it is not one."""
    if not host or any(c in host for c in "/?#@\\ \t"):
        return None, None
    try:
        parts = urlsplit(f"//{host}")
        return (parts.hostname or None), (parts.port or default_port)
    except ValueError:  # a bad port, an unclosed bracket
        return None, None


def is_loopback(name: str | None) -> bool:
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name or "").is_loopback
    except ValueError:
        return False


def listens_beyond_loopback(addresses: str | None) -> bool:
    """True when ComfyUI's --listen value includes any address other than loopback (0.0.0.0, a LAN IP, a name)."""
    return not all(is_loopback(a.strip().strip("[]")) for a in (addresses or "127.0.0.1").split(","))


@functools.lru_cache(maxsize=64)
def _is_local_address(name: str) -> bool:
    """Whether `name` is an IP address of this machine (only such an address can be bound here)."""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((name, 0))
        return True
    except OSError:
        return False
