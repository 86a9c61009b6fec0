# coffre: every set-up step lives here, so that a fresh Debian 12 machine (as root)
# gets from a clean checkout to green tests with `make test` alone.

SHELL := /bin/bash
PYTHON_SYS ?= /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

# Debian packages: borg's build deps (it builds from source on PyPI), systemd-python's,
# pyfuse3's, the real parts the tests start (udevd and loop devices, smbd and
# smbclient, btrfs-progs for the snapshots' btrfs volumes), and what `make deb` and
# its test need (dpkg-shlibdeps, lintian);
# prometheus brings promtool, for the alert rules' tests, and the agent and central
# store of tests/integration/test_prometheus.py (openssl makes its certificate).
APT_PACKAGES := python3-venv python3-dev build-essential pkg-config \
	liblz4-dev libzstd-dev libxxhash-dev libacl1-dev libssl-dev libsystemd-dev \
	libfuse3-dev fuse3 sqlite3 systemd procps \
	udev util-linux e2fsprogs btrfs-progs samba samba-vfs-modules smbclient dpkg-dev lintian \
	bindfs faketime openssh-server openssh-client \
	prometheus openssl

.PHONY: setup apt venv test unit lint bench run deb clean soak

setup: apt venv

apt:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "make setup: run as root to install:$$missing" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	touch $@

# lint-imports checks the import contracts of pyproject.toml ([tool.importlinter]) on this
# tree's daemon/ (PYTHONPATH), whichever checkout the virtualenv was installed from.
lint: setup
	$(VENV)/bin/ruff check daemon tests benchmarks packaging/hds
	$(VENV)/bin/ruff format --check daemon tests benchmarks packaging/hds
	$(VENV)/bin/mypy
	PYTHONPATH=daemon $(VENV)/bin/lint-imports --no-logo

unit: setup
	$(VENV)/bin/pytest tests/unit

test: setup lint
	$(VENV)/bin/pytest tests

# The long chaos soak (tests/integration/soak.py): SOAK_CYCLES cycles of random faults
# against a running daemon with its real parts, then the invariants. As root. SOAK_SEED
# replays a run (the seed is printed first); SOAK_FAULTS=kind,kind narrows the faults.
SOAK_CYCLES ?= 30
SOAK_SEED ?=
SOAK_FAULTS ?=
soak: setup
	$(PY) -m tests.integration.soak --cycles $(SOAK_CYCLES) \
		$(if $(SOAK_SEED),--seed $(SOAK_SEED)) $(if $(SOAK_FAULTS),--faults $(SOAK_FAULTS))

bench: setup
	$(PIP) install -q -e '.[dev,bench]'
	$(PY) -m benchmarks

run: setup
	$(PY) -m coffre.demo

# packaging/coffre.toml, the README's configuration reference and the man page's CONFIGURATION
# section, rewritten from the one table of keys (daemon/coffre/core/config_keys.py); the unit
# test tests/unit/test_config_reference.py fails when they drift. Only the standard library.
.PHONY: docs
docs:
	PYTHONPATH=daemon $(PYTHON_SYS) -m coffre.config.reference --write

# dist/coffre_<version>-1_<arch>.deb: the daemon and its pinned borg in a virtualenv
# at /opt/coffre, the unit, the udev rule, the default configuration, the Samba
# share (packaging/build-deb.sh says how). Check it with `lintian dist/*.deb`.
deb: apt
	$(SHELL) packaging/build-deb.sh

clean:
	rm -rf $(VENV) build dist *.egg-info daemon/*.egg-info .mypy_cache .ruff_cache .pytest_cache demo
