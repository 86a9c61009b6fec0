"""The Debian package: built by ``make deb``, lintian-clean, installed, used, purged.

THIS TEST MODIFIES THE MACHINE IT RUNS ON: as root it installs the package
with ``dpkg -i`` (files under /opt/coffre, /etc/coffre, /usr/bin, /lib, the
state dirs, /srv/coffre, the group coffre-partage), runs the installed daemon
once, then purges the package. CI runs it as root on a throwaway machine.
It refuses to run where coffre is installed or any of its paths exists
(:data:`OWN_PATHS`), and leaves the machine as it found it: after checking
what the purge keeps by policy, it removes that too (try/finally, also on
failure).

The purge policy (README, "Removing coffre"; packaging/debian/postrm): a purge
removes the package's files, the configuration, the caches and runtime files
and the service's enablement; it keeps the passphrase, the state dir (borg's
keys and security dirs, the repository IDs) and the share and repositories
under /srv/coffre when they hold anything, and the group coffre-partage.
"""

from __future__ import annotations

import dataclasses
import grp
import os
import re
import shutil
import stat
import subprocess
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from coffre.config import loader as config
from coffre.core.config_types import Config
from tests.integration.harness import NotifyListener
from tests.parts import binary, in_ci, needs_root

pytestmark = pytest.mark.machine

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO / "packaging" / "coffre.toml"
PACKAGE = "coffre"
GROUP = "coffre-partage"
#: Paths the package creates or that its maintainer scripts make; none may
#: exist before the test, all but the kept ones are gone after the purge.
OWN_PATHS = (
    Path("/opt/coffre"),
    Path("/etc/coffre"),
    Path("/var/lib/coffre"),
    Path("/var/cache/coffre"),
    Path("/run/coffre"),
    Path("/srv/coffre"),
    Path("/usr/bin/coffre"),
    Path("/usr/share/coffre"),
    Path("/usr/share/doc/coffre"),
)
#: Where a listing before and after shows what the package left behind.
WATCHED = (
    "/etc",
    "/opt",
    "/srv",
    "/run/coffre",
    "/usr/bin",
    "/usr/lib/systemd/system",
    "/usr/lib/udev/rules.d",
    "/usr/share/coffre",
    "/usr/share/doc",
    "/usr/share/lintian/overrides",
    "/usr/share/man/man1",
    "/var/lib",
    "/var/cache",
)
#: Changed by dpkg, apt and the shadow tools whatever the package; not its doing.
NOT_WATCHED = (
    "/etc/ld.so.cache",
    "/etc/group-",
    "/etc/gshadow-",
    "/etc/passwd-",
    "/etc/shadow-",
    "/var/lib/dpkg",
    "/var/lib/apt",
    "/var/cache/apt",
    "/var/cache/debconf",
    "/var/cache/man",
    "/var/cache/ldconfig",
)
KEPT_FILES = ("/etc/coffre", "/etc/coffre/passphrase")
#: Kept with everything in them, when they hold anything.
KEPT_TREES = ("/var/lib/coffre", "/srv/coffre/partage", "/srv/coffre/depots")


def run(
    *argv: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def is_installed() -> bool:
    query = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Abbrev}", PACKAGE], capture_output=True, text=True
    )
    return query.returncode == 0 and query.stdout.strip() not in ("", "un")


def listing(roots: Iterable[str] = WATCHED) -> set[str]:
    """Every path under ``roots`` (symlinks not followed), but :data:`NOT_WATCHED`."""
    found: set[str] = set()
    for root in roots:
        if not os.path.lexists(root):
            continue
        found.add(root)
        for directory, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if f"{directory}/{d}" not in NOT_WATCHED]
            found.update(f"{directory}/{name}" for name in (*dirs, *files))
    return {p for p in found if not p.startswith(NOT_WATCHED)}


def mode(path: str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture(scope="module")
def deb(built_deb: Path) -> Path:
    """The package, built once per session by ``make deb`` (tests/integration/conftest.py)."""
    needs_root("installs and purges the package on this machine")
    binary("lintian")
    path = built_deb
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    arch = run("dpkg", "--print-architecture").stdout.strip()
    assert path == REPO / "dist" / f"coffre_{version}-1_{arch}.deb"
    assert path.is_file()
    return path


@pytest.fixture(scope="module")
def machine() -> Iterator[set[str]]:
    """The listing of this machine before the package; afterwards, the machine as it was."""
    needs_root("installs and purges the package on this machine")
    there = [str(p) for p in OWN_PATHS if os.path.lexists(p)]
    if is_installed() or there:
        message = f"coffre is installed here or its paths exist ({there}); not touching them"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    try:
        grp.getgrnam(GROUP)
        group_was_there = True
    except KeyError:
        group_was_there = False
    before = listing()
    try:
        yield before
    finally:
        if is_installed():
            subprocess.run(["dpkg", "--purge", PACKAGE], capture_output=True, timeout=300)
        # What the purge keeps by policy goes too: this machine is a test's.
        for path in OWN_PATHS:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif os.path.lexists(path):
                path.unlink()
        if not group_was_there:
            subprocess.run(["groupdel", GROUP], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def installed(deb: Path, machine: set[str]) -> Path:
    result = run("dpkg", "-i", str(deb), timeout=600)
    # postinst made a passphrase: it says to copy it on paper.
    assert "/etc/coffre/passphrase" in result.stdout + result.stderr
    assert "coffre key export --paper" in result.stdout + result.stderr
    return deb


def test_the_default_configuration_shows_every_key_with_its_default() -> None:
    """packaging/coffre.toml (no root needed): every key is there, the optional
    ones commented out with their true default value, and nothing else."""
    shipped = DEFAULT_CONFIG.read_text(encoding="utf-8")
    uncommented = "\n".join(
        m[1] if (m := re.fullmatch(r"#([a-z_]+ = .*)", line)) else line
        for line in shipped.splitlines()
    )
    as_shipped = config.parse(tomllib.loads(shipped), hostname="cabinet")
    # Uncommenting every default changes nothing...
    assert config.parse(tomllib.loads(uncommented), hostname="cabinet") == as_shipped
    # ...and shows every key of every section.
    raw = tomllib.loads(uncommented)
    sections = [f.name for f in dataclasses.fields(Config) if f.name != "source_file"]
    assert sorted(raw) == sorted("target" if s == "targets" else s for s in sections)
    for section in sections:
        if section == "targets":
            [value], [table] = as_shipped.targets, raw["target"]
        else:
            value, table = getattr(as_shipped, section), raw[section]
        keys = {f.name for f in dataclasses.fields(value)}
        assert sorted(table) == sorted(keys), section


def test_lintian_shows_no_error(deb: Path) -> None:
    result = subprocess.run(
        [binary("lintian"), "--pedantic", str(deb)], capture_output=True, text=True, timeout=900
    )
    lines = result.stdout.splitlines()
    print("\n".join(lines))  # the warnings, for the log
    assert [line for line in lines if line.startswith("E:")] == []
    assert result.returncode == 0 or not any(line.startswith("E:") for line in lines)
    assert "lintian: " not in result.stderr, result.stderr  # lintian itself worked


def test_files_landed_with_their_modes(installed: Path) -> None:
    expected = {
        "/usr/lib/systemd/system/coffre.service": 0o644,
        "/usr/lib/udev/rules.d/90-coffre.rules": 0o644,
        "/etc/coffre/coffre.toml": 0o644,
        "/etc/coffre/passphrase": 0o600,
        "/etc/coffre": 0o755,
        "/var/lib/coffre": 0o700,
        "/var/cache/coffre": 0o700,
        "/srv/coffre": 0o755,
        "/srv/coffre/partage": 0o2770,
        "/srv/coffre/depots": 0o700,
        "/opt/coffre/bin/coffre": 0o755,
        "/opt/coffre/bin/borg": 0o755,
        "/usr/share/coffre/samba/coffre-share.conf": 0o644,
        "/usr/share/coffre/samba/coffre-global.conf": 0o644,
        "/usr/share/coffre/prometheus/agent.yml": 0o644,
        "/usr/share/coffre/prometheus/coffre-rules.yml": 0o644,
        "/usr/share/coffre/grafana/coffre-dashboard.json": 0o644,
        "/usr/share/coffre/journal/coffre-audit-forward.conf": 0o644,
        "/usr/share/doc/coffre/guide-cabinet.md": 0o644,
        "/usr/share/doc/coffre/copyright": 0o644,
        "/usr/share/doc/coffre/changelog.Debian.gz": 0o644,
        "/usr/share/man/man1/coffre.1.gz": 0o644,
    }
    assert {path: mode(path) for path in expected} == expected
    for path in expected:
        status = os.lstat(path)
        assert status.st_uid == 0, path
        assert status.st_gid == (grp.getgrnam(GROUP).gr_gid if "partage" in path else 0), path

    # The shipped files, unmodified.
    same = {
        "/usr/lib/systemd/system/coffre.service": REPO / "systemd" / "coffre.service",
        "/usr/lib/udev/rules.d/90-coffre.rules": REPO / "udev" / "90-coffre.rules",
        "/etc/coffre/coffre.toml": REPO / "packaging" / "coffre.toml",
        "/usr/share/coffre/samba/coffre-share.conf": REPO / "packaging/samba/coffre-share.conf",
        "/usr/share/coffre/samba/coffre-global.conf": REPO / "packaging/samba/coffre-global.conf",
        "/usr/share/coffre/prometheus/coffre-rules.yml": REPO
        / "packaging/prometheus/coffre-rules.yml",
        "/usr/share/coffre/prometheus/agent.yml": REPO / "packaging/prometheus/agent.yml",
        "/usr/share/coffre/journal/coffre-audit-forward.conf": REPO
        / "packaging/journal/coffre-audit-forward.conf",
    }
    for installed_path, source in same.items():
        assert Path(installed_path).read_bytes() == source.read_bytes(), installed_path

    assert str(Path("/usr/bin/coffre").readlink()) == "/opt/coffre/bin/coffre"
    passphrase = Path("/etc/coffre/passphrase").read_text()
    assert len(passphrase.strip()) == 44 and passphrase.endswith("\n")  # 32 bytes, base64

    conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", PACKAGE).stdout
    assert [line.split()[0] for line in conffiles.strip().splitlines()] == [
        "/etc/coffre/coffre.toml"
    ]
    # Enabled for the next boot (deb-systemd-helper works without systemd running).
    wants = Path("/etc/systemd/system/multi-user.target.wants/coffre.service")
    assert str(wants.readlink()) == "/lib/systemd/system/coffre.service"
    # postinst compiled the bytecode the package does not ship.
    site = next(Path("/opt/coffre/lib").glob("python3.*/site-packages"))
    assert list((site / "coffre" / "cli" / "__pycache__").glob("dispatch.*.pyc"))
    shipped = run("dpkg-query", "-L", PACKAGE).stdout.splitlines()
    assert not [p for p in shipped if "__pycache__" in p or p.endswith(".pyc")]


def test_the_virtualenv_was_relocated(installed: Path) -> None:
    """No file names the staging tree the package was built in."""
    staging = str(REPO / "build" / "deb")
    grep = subprocess.run(
        ["grep", "-rlF", "--", staging, "/opt/coffre"], capture_output=True, text=True, timeout=300
    )
    assert (grep.returncode, grep.stdout) == (1, ""), grep.stdout + grep.stderr
    config = Path("/opt/coffre/pyvenv.cfg").read_text()
    assert "-m venv /opt/coffre" in config, config
    shebang = Path("/opt/coffre/bin/coffre").read_text().splitlines()[0]
    assert shebang == "#!/opt/coffre/bin/python3"


def test_commands_run(installed: Path) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}
    assert run("/usr/bin/coffre", "--version", env=env).stdout.strip() == f"coffre {version}"
    borg = run("/opt/coffre/bin/borg", "--version", env=env).stdout.strip()
    assert borg == "borg 1.4.5"
    # Every compiled module still loads once stripped and installed (and finds
    # the Debian libraries the package depends on).
    site = next(Path("/opt/coffre/lib").glob("python3.*/site-packages"))
    # A package's own extension (pyfuse3/__init__.*.so) is imported as the package.
    modules = sorted(
        ".".join(so.relative_to(site).with_name(so.name.split(".")[0]).parts).removesuffix(
            ".__init__"
        )
        for so in site.rglob("*.so")
    )
    assert "borg.compress" in modules and "systemd._journal" in modules
    script = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)"
    run("/opt/coffre/bin/python3", "-c", script, *modules, env=env)


def test_the_shipped_configuration_is_valid(installed: Path) -> None:
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}
    result = subprocess.run(
        ["/usr/bin/coffre", "config", "check"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_installed_daemon_backs_up_the_share(installed: Path, tmp_path: Path) -> None:
    """The packaged paths, end to end: the README's first set-up and key export."""
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}
    share = Path("/srv/coffre/partage")
    (share / "ordonnance.txt").write_text("Mme Dupont: séances de kiné\n", encoding="utf-8")
    notify = NotifyListener(tmp_path / "notify.sock")
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            ["/usr/bin/coffre", "daemon", "--log-target", "stderr"],
            env={**env, "NOTIFY_SOCKET": str(notify.path)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        try:
            notify.expect("READY", "1", timeout=60)
        except AssertionError:
            raise AssertionError(f"daemon not ready:\n{log.read_text()}") from None
        for argv in (("target", "init", "local"), ("backup", "--wait"), ("status",)):
            run("/usr/bin/coffre", *argv, env=env, timeout=300)
        warned = run("/usr/bin/coffre", "status", env=env).stdout
        assert "was never exported" in warned
        exported = run("/usr/bin/coffre", "key", "export", "--paper", env=env).stdout
        assert "BORG PAPER KEY v1" in exported and "/srv/coffre/depots/local" in exported
        assert "was never exported" not in run("/usr/bin/coffre", "status", env=env).stdout
    finally:
        daemon.terminate()
        daemon.wait(timeout=120)
        notify.close()
    assert daemon.returncode == 0, log.read_text()
    assert Path("/var/lib/coffre/state.db").is_file()
    assert (Path("/srv/coffre/depots/local") / "config").is_file()


def test_purge_leaves_only_what_the_policy_keeps(installed: Path, machine: set[str]) -> None:
    share = Path("/srv/coffre/partage")
    (share / "compte-rendu.txt").write_text("gardé\n", encoding="utf-8")
    installed_listing = listing()
    kept_by_policy = {p for p in KEPT_FILES if p in installed_listing}
    for tree in KEPT_TREES:
        inside = {p for p in installed_listing if p.startswith(tree + "/")}
        if inside:
            kept_by_policy |= {tree, *inside, str(Path(tree).parent)}

    result = run("dpkg", "--purge", PACKAGE, timeout=300)
    assert not is_installed()
    assert "purge keeps /etc/coffre/passphrase" in result.stderr

    after = listing()
    assert sorted(after - machine) == sorted(kept_by_policy - machine)
    assert sorted(machine - after) == []
    # The share's data and the passphrase are there, the group that owns the share too.
    assert (share / "compte-rendu.txt").read_text(encoding="utf-8") == "gardé\n"
    assert mode("/etc/coffre/passphrase") == 0o600
    assert grp.getgrnam(GROUP)
    # And nothing that was only the package's.
    for gone in (
        "/etc/coffre/coffre.toml",
        "/var/cache/coffre",
        "/run/coffre",
        "/opt/coffre",
        "/usr/bin/coffre",
        "/etc/systemd/system/multi-user.target.wants/coffre.service",
    ):
        assert not os.path.lexists(gone), gone
