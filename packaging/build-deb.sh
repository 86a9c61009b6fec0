#!/usr/bin/env bash
# Builds dist/coffre_<version>_<arch>.deb from this work tree (`make deb`).
#
# No debhelper: a tree is staged under build/deb/root and packed with
# `dpkg-deb --build --root-owner-group` (no fakeroot needed). The daemon and its
# pinned dependencies go into a virtualenv at /opt/coffre, built with Debian's
# Python 3.11 inside the staging tree. A virtualenv is not relocatable (its
# scripts' shebangs, pyvenv.cfg and the activate scripts name its own path), so
# every occurrence of the staging path is then rewritten to /opt/coffre, and
# the build fails if any is left, in text or binary files. No bytecode is
# shipped: postinst compiles it, prerm removes it (as dh_python3 does).
#
# Environment: PYTHON (default /usr/bin/python3.11), DEB_REVISION (default 1),
# MAINTAINER, SOURCE_DATE_EPOCH (default: the last commit's date).
set -euo pipefail
umask 022

cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-/usr/bin/python3.11}
MAINTAINER=${MAINTAINER:-coffre maintainers <maintainers@users.noreply.r-seed-3a65dfdd.example>}
PREFIX=/opt/coffre
BUILD=$REPO/build/deb
STAGE=$BUILD/root
DIST=$REPO/dist

upstream=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
version=$upstream-${DEB_REVISION:-1}
arch=$(dpkg --print-architecture)
: "${SOURCE_DATE_EPOCH:=$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH
deb=$DIST/coffre_${version}_${arch}.deb
py_minor=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')

say() { printf 'make deb: %s\n' "$*" >&2; }

rm -rf "$BUILD"
mkdir -p "$STAGE" "$DIST"

# --- the virtualenv ----------------------------------------------------------
say "virtualenv at $PREFIX (staged), with coffre $upstream and its pinned dependencies"
"$PYTHON" -m venv "$STAGE$PREFIX"
venv_py=$STAGE$PREFIX/bin/python3
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# Non-editable; --no-compile: bytecode would name the staging path.
"$venv_py" -m pip install --quiet --no-compile --no-warn-script-location --use-pep517 "$REPO"
# The installer itself is not part of the appliance.
"$venv_py" -m pip uninstall --quiet --yes pip setuptools
rm -f "$STAGE$PREFIX"/bin/pip* "$STAGE$PREFIX"/bin/Activate.ps1
# The appliance's commands are coffre and borg; the other entry points of the
# dependencies (borgfs, invoke, cffi-gen-src) are development tools.
find "$STAGE$PREFIX/bin" -maxdepth 1 -type f -perm -u+x ! -name coffre ! -name borg -delete
find "$STAGE$PREFIX" -depth -type d -name __pycache__ -exec rm -rf {} +
# pip's record of where coffre was installed from: the build machine's path.
for direct_url in "$STAGE$PREFIX"/lib/python*/site-packages/coffre-*.dist-info/direct_url.json; do
	rm -f "$direct_url"
	sed -i '/direct_url\.json/d' "$(dirname "$direct_url")/RECORD"
done

# Relocate: the staging path becomes /opt/coffre in every text file.
grep -rlIZ --fixed-strings "$STAGE" "$STAGE$PREFIX" | xargs -0 --no-run-if-empty \
	sed -i "s|$STAGE$PREFIX|$PREFIX|g"
if left=$(grep -rl --fixed-strings "$STAGE" "$STAGE$PREFIX"); then
	say "the staging path is still named in:"
	printf '%s\n' "$left" >&2
	exit 1
fi
# Shared objects: no debugging symbols in the package (as dh_strip does).
find "$STAGE$PREFIX" -type f -name '*.so*' -exec strip --strip-unneeded --remove-section=.comment --remove-section=.note {} +

# --- the appliance's files -----------------------------------------------------
install -d "$STAGE/usr/bin"
ln -s "$PREFIX/bin/coffre" "$STAGE/usr/bin/coffre"
install -D -m 0644 systemd/coffre.service "$STAGE/lib/systemd/system/coffre.service"
install -D -m 0644 udev/90-coffre.rules "$STAGE/lib/udev/rules.d/90-coffre.rules"
install -D -m 0644 packaging/coffre.toml "$STAGE/etc/coffre/coffre.toml"
install -D -m 0644 -t "$STAGE/usr/share/coffre/samba" \
	packaging/samba/coffre-share.conf packaging/samba/coffre-global.conf
# Monitoring: the box's Prometheus agent config, the alert rules for the
# central side, and the dashboard (README, "Monitoring").
install -D -m 0644 -t "$STAGE/usr/share/coffre/prometheus" \
	packaging/prometheus/agent.yml packaging/prometheus/coffre-rules.yml
install -D -m 0644 -t "$STAGE/usr/share/coffre/grafana" packaging/grafana/coffre-dashboard.json
# The audit trail's journal copy off the box, for rsyslog: off until the
# admin installs it (README, "Audit trail").
install -D -m 0644 -t "$STAGE/usr/share/coffre/journal" packaging/journal/coffre-audit-forward.conf
install -D -m 0644 packaging/debian/lintian-overrides "$STAGE/usr/share/lintian/overrides/coffre"
install -d "$STAGE/usr/share/man/man1"
gzip -9n <packaging/coffre.1 >"$STAGE/usr/share/man/man1/coffre.1.gz"

doc=$STAGE/usr/share/doc/coffre
install -d "$doc"
install -m 0644 README.md "$doc/README.md"
install -m 0644 docs/guide-cabinet.md "$doc/guide-cabinet.md"
install -m 0644 docs/disaster-recovery.md "$doc/disaster-recovery.md"
date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
sed -e "s|@VERSION@|$version|" -e "s|@MAINTAINER@|$MAINTAINER|" -e "s|@DATE@|$date|" \
	packaging/debian/changelog | gzip -9n >"$doc/changelog.Debian.gz"
sed -e "s|@MAINTAINER@|$MAINTAINER|" packaging/debian/copyright >"$doc/copyright"
sed -i "s|python3\.11|python$py_minor|g" "$doc/copyright"

# Modes: the tree is root's and readable by all, nothing writable but by root.
chmod -R u+rwX,go+rX,go-w "$STAGE"

# --- DEBIAN/ -------------------------------------------------------------------
control_dir=$STAGE/DEBIAN
install -d "$control_dir"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$control_dir"
install -m 0644 packaging/debian/conffiles "$control_dir"

# The shared libraries the compiled modules need, as Debian packages.
shlib_dir=$BUILD/shlibdeps
install -d "$shlib_dir/debian"
printf 'Source: coffre\n\nPackage: coffre\nArchitecture: any\n' >"$shlib_dir/debian/control"
mapfile -d '' elves < <(find "$STAGE$PREFIX" -type f -name '*.so*' -print0)
(
	cd "$shlib_dir"
	dpkg-shlibdeps -O --warnings=1 "${elves[@]}"
) >"$BUILD/shlibs.substvars"
shlib_depends=$(sed -n 's/^shlibs:Depends=//p' "$BUILD/shlibs.substvars")
# The virtualenv runs /usr/bin/python3.11 and its modules are built for it;
# python3 pinned to that version too, so that a release upgrade that moves
# Debian's Python on has to deal with coffre instead of breaking it silently.
# fuse3: `coffre browse` mounts archives with borg mount (pyfuse3, fusermount3).
depends="python$py_minor, python3 (>= $py_minor~), python3 (<< ${py_minor%.*}.$((${py_minor#*.} + 1))), adduser, fuse3, $shlib_depends"

installed_size=$(du -s -k --apparent-size --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@MAINTAINER@|$MAINTAINER|" \
	-e "s|@INSTALLED_SIZE@|$installed_size|" -e "s|@DEPENDS@|$depends|" \
	packaging/debian/control.in >"$control_dir/control"

(
	cd "$STAGE"
	# Conffiles are left out, as dh_md5sums does: dpkg records their sums itself.
	find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
		grep -zvxF -f <(sed 's|^/||' DEBIAN/conffiles) | xargs -0 md5sum >DEBIAN/md5sums
)
chmod 0644 "$control_dir/md5sums"

rm -f "$deb"
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$deb" >/dev/null
say "built $deb"
echo "$deb"
