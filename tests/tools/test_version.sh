#!/usr/bin/env bash
# --version of every installed program prints "PROG (libvmfs) VERSION" (the
# CMake project version) on stdout, nothing on stderr, exit 0: vmfsctl,
# every vmfsctl command listed by `vmfsctl --help` (also after other
# options), vmfsmount (--version and -V) and the mount helper
# mount.fuse.vmfs of the build tree. After "--" a --version belongs to the
# program `vmfsctl lock` runs, not to vmfsctl.
set -u
V=${VMFSCTL:?VMFSCTL not set}
VERSION=${VMFS_VERSION:?VMFS_VERSION not set}
D=$(dirname "$V")
T=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/version.XXXXXX")
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/../checks.sh"

expect_version() { # expect_version PROG ARGS...: prints PROG's version
	local prog=$1 rc
	shift
	checks=$((checks + 1))
	timeout 30 "$@" >"$T/out" 2>"$T/err" </dev/null
	rc=$?
	if [ $rc != 0 ] || [ "$(cat "$T/out")" != "$prog (libvmfs) $VERSION" ] || [ -s "$T/err" ]; then
		fail "$(basename "$1") ${*:2}: exit $rc, stdout '$(head -c 200 "$T/out")'," \
			"stderr '$(head -c 200 "$T/err")'; want '$prog (libvmfs) $VERSION', exit 0"
	fi
}

expect_version vmfsctl "$V" --version
cmds=$("$V" --help | awk '/^Commands:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ {on = 0}')
[ -n "$cmds" ] || {
	echo "FAIL: no commands found in 'vmfsctl --help'" >&2
	exit 1
}
for c in $cmds; do
	expect_version vmfsctl "$V" "$c" --version
done
expect_version vmfsctl "$V" ls -l --version
expect_version vmfsctl "$V" vdisk create --version
# after "--": the command runs (and fails here: no such device)
checks=$((checks + 1))
timeout 30 "$V" lock "$T/none.img" NAME -- true --version >"$T/out" 2>&1
rc=$?
if [ $rc = 0 ] || grep -q "(libvmfs)" "$T/out"; then
	fail "vmfsctl lock DEV NAME -- true --version took the command's --version (exit $rc): $(head -c 200 "$T/out")"
fi

if [ -x "$D/vmfsmount" ]; then
	expect_version vmfsmount "$D/vmfsmount" --version
	expect_version vmfsmount "$D/vmfsmount" -V
	expect_version vmfsmount "$D/vmfsmount" -o host=x --version
	expect_version mount.fuse.vmfs "$D/mount.fuse.vmfs" --version
	expect_version mount.fuse.vmfs "$D/mount.fuse.vmfs" -V
else
	echo "note: vmfsmount and mount.fuse.vmfs not built (no libfuse3): not checked"
fi

checks_done
