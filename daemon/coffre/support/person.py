"""Who asks for an audited operation, as the CLI sees it.

Apart from :mod:`coffre.storage.audit` so that the CLI's restore, find and browse
load neither hashlib (OpenSSL) nor the log's machinery: it only tells the
daemon who is asking; the daemon writes the log.
"""

from __future__ import annotations

import pwd
from collections.abc import Mapping
from typing import Any


def person_from_env(env: Mapping[str, str], uid: int) -> dict[str, Any]:
    """Who is asking, as the CLI sees it, for the ``person`` of an entry.

    ``env`` is the CLI's environment, ``uid`` its real uid. Returns
    ``{"user", "login", "uid", "ssh"}``: ``user`` is the person (``SUDO_USER``,
    else ``LOGNAME``/``USER``, else the account name of ``uid``, else the uid as
    text), ``login`` the account name of ``uid`` (None if it has none), ``ssh``
    the ``SSH_CONNECTION`` ("client-ip client-port server-ip server-port") or None.
    Empty variables count as unset. Raises nothing; only reads the passwd database.
    """
    try:
        login: str | None = pwd.getpwuid(uid).pw_name
    except KeyError:
        login = None
    # The environment is what the caller claims (only root reaches the daemon);
    # "login" and "uid" are what the kernel says, so both are kept.
    user = env.get("SUDO_USER") or env.get("LOGNAME") or env.get("USER") or login or str(uid)
    return {"user": user, "login": login, "uid": uid, "ssh": env.get("SSH_CONNECTION") or None}
