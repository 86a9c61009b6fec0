"""What a valid configuration does that is unwise: warnings, said but never refused.

A :class:`ConfigWarning` names its key, like a :class:`coffre.core.errors.ConfigProblem`,
but the file stays valid: ``coffre config check`` prints the warnings after
"valid" (exit 0), and the daemon logs them at start. Pure: nothing on the
box is looked at, no name is resolved.

One today: the metrics endpoint listening beyond loopback. The exporter has
no authentication, and while it names no patient data it tells the state of
the backups (which target fails, which disk is away) to whoever reaches it.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from coffre.core.config_types import Config, MetricsConfig

#: Where the README says what to do about it.
FIREWALL_NOTE = 'README, "Monitoring", "Beyond loopback: the firewall"'


@dataclass(frozen=True)
class ConfigWarning:
    """A valid setting that deserves a second look: ``key`` (dotted) and what to know."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


def config_warnings(config: Config) -> list[ConfigWarning]:
    """The warnings of a valid ``config`` (empty when none). Raises nothing."""
    found = _metrics_warning(config.metrics)
    return [found] if found is not None else []


def beyond_loopback(host: str) -> str | None:
    """Why ``host`` (an address or name as ``metrics.listen`` has it, IPv6 without brackets)
    may be reached from off the box, or None when it is loopback only.

    Numbers are read as the system reads them (``127.1`` is 127.0.0.1, ``0`` is
    0.0.0.0); of the names, only ``localhost`` is known to stay on the box.
    """
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    if ":" in host:
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            return "it is no IPv6 address coffre can read"
        address = address.ipv4_mapped or address
    else:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            if host.lower().rstrip(".") == "localhost":
                return None
            return "it is a host name, which may resolve to an address beyond loopback"
    if address.is_loopback:
        return None
    if address.is_unspecified:
        return "it listens on every address of the box"
    return f"{address} is not a loopback address"


def _metrics_warning(metrics: MetricsConfig) -> ConfigWarning | None:
    if not metrics.enabled:
        return None
    why = beyond_loopback(metrics.host)
    if why is None:
        return None
    return ConfigWarning(
        "metrics.listen",
        f'"{metrics.listen}" reaches beyond the box ({why}): the exporter has no '
        "authentication and tells anyone who reaches it the state of the backups; "
        f"let the box's firewall open port {metrics.port} to the central monitoring only "
        f'({FIREWALL_NOTE}), or listen on "127.0.0.1:{metrics.port}"',
    )
