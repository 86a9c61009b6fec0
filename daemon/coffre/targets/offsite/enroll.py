"""``coffre offsite enroll``, the daemon's side: the box's key, the host's key, the pin.

Run by the daemon (it owns the state dir, where keys and pins live; ``/etc``
is the admin's and read-only to it), asked over the control socket. No borg
runs here: the ``borg init`` of enrollment is an ``init`` job, which the CLI
asks for next, once the host is pinned and takes the box's key.

The steps, each safe to repeat:

1. the box's ed25519 key for the target is created if missing;
2. the host's key is fetched (paramiko, key exchange only) and its
   fingerprint shown, with the ``authorized_keys`` line for the host;
3. with ``accept`` (a fingerprint, checked with the host's operator), and
   only when it is the fingerprint the host shows, the key is pinned;
4. once pinned, the preflight says whether the host takes the box's key.
"""

from __future__ import annotations

import asyncio
from typing import Any

from coffre.core.clock import Clock
from coffre.core.config_types import Config, OffsiteTarget
from coffre.core.errors import CoffreError, UsageError
from coffre.core.messages import Send
from coffre.core.sshkeys import PublicKey, authorized_keys_line
from coffre.jobs.services import Services
from coffre.targets.offsite import repository as offsite
from coffre.targets.offsite import ssh

__all__ = ["enroll", "normal_fingerprint"]


def normal_fingerprint(text: str) -> str:
    """``text`` as ``SHA256:...`` (the prefix may be left out; padding is dropped)."""
    text = text.strip().rstrip("=")
    return text if text.startswith("SHA256:") else f"SHA256:{text}"


def offsite_target(config: Config, name: str) -> OffsiteTarget:
    """The offsite target ``name``; UsageError when unknown or of another kind."""
    target = config.target(name)
    if not isinstance(target, OffsiteTarget):
        raise UsageError(
            f"target {name} is of kind {target.kind!r}, not offsite",
            hint='`coffre offsite` commands are for kind = "offsite" targets',
        )
    return target


async def enroll(
    services: Services, name: str, accept: str | None, send: Send, *, clock: Clock
) -> None:
    """Do the enrollment steps for target ``name`` and send their outcome as one result.

    Raises UsageError (unknown target, a fingerprint that is not the host's,
    a configuration whose ``host_keys`` do not hold the host's key),
    OffsiteUnreachable when the host cannot be reached to fetch its key,
    OSError when the box's key cannot be written, StateError when the pin cannot.
    """
    config = services.config
    target = offsite_target(config, name)
    paths = config.paths
    public, created = await asyncio.to_thread(
        ssh.ensure_key, offsite.key_file(target, paths), offsite.box_comment()
    )
    pinned = offsite.pinned_keys(target, paths)
    shown = await asyncio.to_thread(
        ssh.fetch_host_key,
        target.host,
        target.port,
        timeout=float(target.connect_timeout),
        key_types=sorted({k.type for k in pinned}),
    )
    matches = any(k.blob == shown.blob for k in pinned)
    pinned_now = False
    if accept is not None:
        _check_accepted(target, accept, shown, matches)
        if not matches and not target.host_keys:
            await _pin(services, target, shown, clock)
            pinned_now = matches = True
    preflight = await _preflight(services, target) if matches else None
    await send(
        {
            "event": "result",
            "ok": True,
            "target": name,
            "host": f"{target.host}:{target.port}",
            "host_key": shown.openssh,
            "fingerprint": shown.fingerprint,
            "pinned": matches,
            "pinned_now": pinned_now,
            "pinned_before": bool(pinned),
            "pinned_in_config": bool(target.host_keys),
            "key_created": created,
            "public_key": public.openssh,
            "authorized_keys": authorized_keys_line(public, target.path, offsite.box_comment()),
            "preflight": preflight,
        }
    )


def _check_accepted(target: OffsiteTarget, accept: str, shown: PublicKey, matches: bool) -> None:
    """Refuse ``accept`` unless it is the key the host shows, and one the config allows.

    ``matches``: whether ``shown`` is pinned already. Raises UsageError when
    the host shows another fingerprint (nothing is pinned: a difference may
    be an interception), or when the configuration's ``host_keys``, which
    replace enrollment's pins, do not hold the host's key.
    """
    wanted = normal_fingerprint(accept)
    if wanted != shown.fingerprint:
        raise UsageError(
            f"{target.host}:{target.port} shows {shown.fingerprint}, not {wanted}: "
            "nothing was pinned",
            hint="compare with the fingerprint the host's operator reads on the host "
            "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub); a difference may be "
            "an interception",
        )
    if target.host_keys and not matches:
        raise UsageError(
            f"target {target.name}: the configuration's host_keys do not hold the key the "
            f"host shows ({shown.fingerprint})",
            hint=f'put "{shown.openssh}" in host_keys of this target (or remove '
            "host_keys to let enrollment pin it)",
        )


async def _pin(services: Services, target: OffsiteTarget, shown: PublicKey, clock: Clock) -> None:
    """Pin ``shown`` as the host key of ``target``, and say so in the journal (StateError)."""
    await asyncio.to_thread(offsite.pin_host_key, target, services.config.paths, shown, clock.now())
    services.logger.warning(
        "target %s: host key %s %s pinned for %s:%s",
        target.name,
        shown.type,
        shown.fingerprint,
        target.host,
        target.port,
    )


async def _preflight(services: Services, target: OffsiteTarget) -> dict[str, Any]:
    """Whether the pinned host takes the box's key: ``{"ok": True}``, or the error's fields."""
    repository = offsite.OffsiteRepository(target, services)
    try:
        await repository.check_host()
    except CoffreError as error:
        return {
            "ok": False,
            "error": {"kind": error.kind, "message": error.message, "hint": error.hint},
        }
    return {"ok": True}
