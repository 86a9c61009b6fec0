"""Unit tests never write into the box's own folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coffre.core.config_types import PathsConfig

#: The box's state, cache and runtime folders (the configuration's defaults).
BOX_FOLDERS = (PathsConfig().state, PathsConfig().cache, PathsConfig().runtime)


@pytest.fixture(autouse=True, scope="session")
def _the_box_folders_stay_untouched() -> Iterator[None]:
    """Fail the session when a unit test made one of the box's folders (a default path used).

    A test that ran the real drill with the default paths once made
    /var/lib/coffre and /var/cache/coffre on this machine, and the package's
    test, which refuses to run over an installed box, then failed.
    """
    absent = [p for p in BOX_FOLDERS if not p.exists()]
    yield
    made = [str(p) for p in absent if Path(p).exists()]
    assert not made, f"unit tests made the box's own folders: {made} (use tmp paths)"
