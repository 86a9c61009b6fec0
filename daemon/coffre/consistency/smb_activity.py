"""Who writes over SMB now: runs ``smbstatus --locks --json`` and counts the writers.

The count of opens for writing under the given roots is all that leaves this
module: the file names smbstatus lists are patient data, never logged, never
in an error message (:mod:`coffre.consistency.smb_opens` reads them).

When smbd is not running, smbstatus (Samba 4.17) still exits 0 and prints
JSON, seen on Debian 12:

- smbd stopped or killed after it ran: ``"open_files": {}`` (smbstatus skips
  the opens of processes that no longer exist, unless given ``--fast``, which
  is never passed here): 0 writers.
- smbd never ran with this lock directory (it lives in /run, emptied at boot):
  no ``open_files`` at all, and on stderr "locking.tdb not initialised / This is
  normal if an SMB client has never connected to your server": 0 writers too,
  since no client can have opened anything.
- a configuration file smbstatus cannot load: also no ``open_files``, also exit
  0, but stderr says "Can't load <file>" (and it falls back to the default lock
  directory, possibly another smbd's): that is a failure, not a quiet share.

Anything else without ``open_files`` is a failure too (SmbStatusUnavailable):
an unknown answer never counts as nobody writing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path

from coffre.consistency.smb_opens import parse, writers_under
from coffre.core.errors import SmbStatusUnavailable
from coffre.core.printable import controls_escaped

#: smbstatus's stderr when its locking database was never created (no smbd ran).
NOT_INITIALISED = "not initialised"
#: smbstatus's stderr when it could not load the configuration file (it still exits 0).
CANNOT_LOAD = "Can't load"
HINT = (
    "is Samba installed (apt install samba) and smbd running (systemctl status smbd)? "
    "is quiescence.samba_config the smb.conf smbd runs with?"
)


# The timeout is smbstatus's, not the caller's await: at it the child is killed and
# reaped, which a cancellation from the caller's asyncio.timeout would not wait for.
async def open_for_writing(
    roots: Sequence[Path],
    *,
    smbstatus: str,
    samba_config: str | None,
    timeout: float = 10,  # noqa: ASYNC109
) -> int:
    """How many SMB opens for writing are on files under ``roots``, per smbd now.

    ``smbstatus``: the program to run; ``samba_config``: smbd's smb.conf
    (``--configfile``), None for Samba's default; ``timeout``: seconds before
    smbstatus is killed. ``roots`` as smbd sees the shares (their ``path``).
    Returns 0 when smbd is stopped or never ran (see the module's docstring).
    Raises SmbStatusUnavailable when smbstatus is missing, exits non-zero,
    outlasts ``timeout``, cannot load ``samba_config``, or prints output it
    cannot read.
    """
    argv = [smbstatus, "--locks", "--json"]
    if samba_config is not None:
        argv.append(f"--configfile={samba_config}")
    out, err = await _run(argv, timeout)
    if CANNOT_LOAD in err:
        raise SmbStatusUnavailable(
            f"smbstatus could not load the Samba configuration: {_first_line(err)}", hint=HINT
        )
    try:
        opens = parse(out)
    except ValueError as exc:
        if NOT_INITIALISED in err:
            # No locking database: smbd never ran since /run was emptied, so nobody writes.
            return 0
        raise SmbStatusUnavailable(f"smbstatus's answer is unreadable: {exc}", hint=HINT) from exc
    return writers_under(opens, roots)


async def _run(argv: list[str], limit: float) -> tuple[str, str]:
    """``argv``'s stdout and stderr; SmbStatusUnavailable if it cannot run, fails or hangs
    past ``limit`` seconds (then it is killed)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise SmbStatusUnavailable(
            f"cannot run {controls_escaped(argv[0])}: {exc.strerror}", hint=HINT
        ) from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise SmbStatusUnavailable(
            f"smbstatus did not answer within {limit:g} s", hint=HINT
        ) from None
    error = err.decode(errors="replace")
    if proc.returncode != 0:
        raise SmbStatusUnavailable(
            f"smbstatus exited {proc.returncode}: {_first_line(error) or 'no message'}",
            hint=HINT,
        )
    return out.decode(errors="replace"), error


def _first_line(text: str) -> str:
    """The first non-empty line of ``text``, escaped for a log line, at most 200 characters."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return controls_escaped(line[:200])
