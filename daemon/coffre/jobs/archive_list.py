"""The archive list of a target: borg's, remembered in state, trusted for a week.

Retention, restores, finds and a plugged disk all need a target's archives;
asking borg each time means a repository lock and, offsite, a round trip over
SSH. So each listing borg gives is kept in state (``archive_lists``), the
jobs that add or delete archives keep it up to date, and it is trusted for
:data:`LIST_MAX_AGE`: archives added or removed by hand (``borg`` run by an
administrator) are seen within that time.
"""

from __future__ import annotations

from datetime import timedelta

from coffre.borg import argv, parse
from coffre.core.model import Archive
from coffre.jobs.services import Services

__all__ = ["LIST_MAX_AGE", "known_archives", "list_archives"]

#: State's archive list is trusted for this long; then borg is asked again,
#: so archives added or removed by hand are seen within a week.
LIST_MAX_AGE = timedelta(days=7)


async def list_archives(services: Services, target: str, location: str) -> list[Archive]:
    """Ask borg for the archive list of ``location`` and make it the known list of ``target``.

    Returns the archives, oldest first. Raises BorgError subclasses.
    """
    result = await services.borg.run(argv.list_archives(location))
    archives = parse.archives(result.json())
    services.state.replace_archives(target, archives, services.clock.now())
    return archives


async def known_archives(services: Services, target: str, location: str) -> list[Archive]:
    """The archives of ``target`` from state; borg is asked when state's list is missing or old.

    Returns the archives, oldest first. Raises BorgError subclasses when borg is asked.
    """
    listed_at = services.state.archives_listed_at(target)
    known = services.state.archives(target)
    if known is None or listed_at is None or services.clock.now() - listed_at > LIST_MAX_AGE:
        return await list_archives(services, target, location)
    return known
