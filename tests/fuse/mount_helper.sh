#!/usr/bin/env bash
# mount(8) with the mount helper: this build installed into a temporary
# prefix P, then `mount -t fuse.vmfs IMG MNT -o host=esx1`, `mount -a -T
# FSTAB` (host=esx2, with mount(8)'s own options defaults, _netdev,
# nofail, x-... that the helper must drop, and noatime that it must pass)
# and `mount -T FSTAB MNT` of a noauto line (host=esx3); a file written on
# one mount is read on the others; each host is live under its name;
# `mount -f` (fake) mounts nothing; a bad option fails with vmfsmount's
# message; umount ends each vmfsmount, and fsck is clean afterwards.
#
# mount(8) finds helpers only in /sbin (/sbin/fs.d, /sbin/fs), so the
# test runs inside a private mount namespace (unshare --mount, propagation
# private) in which /sbin's directory is covered by a bind mount of a
# scratch directory of symbolic links: one to each entry of the real
# directory (bind-mounted elsewhere first) and mount.fuse.vmfs to P's.
# Nothing is written to the real /sbin, and every mount made in the
# namespace goes away with it. The vmfsmount daemons started there are
# unmounted by the namespace's EXIT trap; any still running at the end
# (their program is P/sbin/vmfsmount, P unique to this run) are killed by
# PID by the outer EXIT trap, which then removes the scratch directory.
set -u
VERSION=${VMFS_VERSION:?VMFS_VERSION not set}
fails=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}
check() { # check WHAT CMD...: CMD must succeed
	local what=$1
	shift
	checks=$((checks + 1))
	"$@" || fail "$what"
}

# PIDs of vmfsmount processes of prefix $P [on mount point $1]
daemons() {
	local d a
	for d in /proc/[0-9]*; do
		mapfile -d '' -t a <"$d/cmdline" 2>/dev/null || continue
		[ ${#a[@]} -gt 0 ] && [ "${a[0]}" = "$P/sbin/vmfsmount" ] || continue
		[ -z "${1:-}" ] || [ "${a[${#a[@]} - 1]}" = "$1" ] || continue
		echo "${d#/proc/}"
	done
}

mounted() { # mounted MNT [TYPE]: MNT is a mount point (of TYPE) here
	awk -v m="$1" -v t="${2:-}" '$2 == m && (t == "" || $3 == t) {f = 1} END {exit !f}' \
		/proc/self/mounts
}

# ---- inside the namespace ---------------------------------------------------
if [ "${1:-}" = --in-namespace ]; then
	T=$2
	P=$3
	IMG=$T/lun.img
	V=$P/sbin/vmfsctl
	M1=$T/mnt/esx1 M2=$T/mnt/esx2 M3=$T/mnt/esx3 M4=$T/mnt/esx4
	ns_cleanup() {
		local m
		for m in "$M1" "$M2" "$M3" "$M4"; do
			mounted "$m" && umount -l "$m"
		done
	}
	trap ns_cleanup EXIT
	mkdir -p "$M1" "$M2" "$M3" "$M4" "$T/sbin-real" "$T/sbin-links"

	# the helper appears in /sbin, here only
	sbin=$(readlink -f /sbin)
	mount --bind "$sbin" "$T/sbin-real" || exit 1
	for f in "$T/sbin-real"/* "$T/sbin-real"/.[!.]*; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		ln -s "$f" "$T/sbin-links/${f##*/}"
	done
	ln -sfn "$P/sbin/mount.fuse.vmfs" "$T/sbin-links/mount.fuse.vmfs"
	mount --bind "$T/sbin-links" "$sbin" || exit 1
	got=$(/sbin/mount.fuse.vmfs --version)
	check "/sbin/mount.fuse.vmfs --version: '$got'" \
		test "$got" = "mount.fuse.vmfs (libvmfs) $VERSION"

	# mount -t, mount -a -T, mount -T MNT
	timeout 60 mount -t fuse.vmfs "$IMG" "$M1" -o host=esx1 2>"$T/m1.err"
	check "mount -t fuse.vmfs IMG MNT -o host=esx1: rc $?: $(cat "$T/m1.err")" \
		mounted "$M1" fuse.vmfs
	cat >"$T/fstab" <<FSTAB
# a temporary fstab of tests/fuse/mount_helper.sh
$IMG $M2 fuse.vmfs defaults,host=esx2,_netdev,nofail,x-vmfs.test=1,noatime 0 0
$IMG $M3 fuse.vmfs noauto,host=esx3,comment=third 0 0
FSTAB
	timeout 60 mount -a -T "$T/fstab" 2>"$T/m2.err"
	check "mount -a -T FSTAB: rc $?: $(cat "$T/m2.err")" mounted "$M2" fuse.vmfs
	check "mount -a mounted the noauto line" eval '! mounted "$M3"'
	check "noatime did not reach the mount: $(grep "$M2" /proc/self/mounts)" \
		eval 'grep "^[^ ]* $M2 " /proc/self/mounts | grep -q noatime'
	timeout 60 mount -T "$T/fstab" "$M3" 2>"$T/m3.err"
	check "mount -T FSTAB MNT: rc $?: $(cat "$T/m3.err")" mounted "$M3" fuse.vmfs

	# three hosts of one volume, under the names given with host=
	"$V" hosts "$IMG" >"$T/hosts.out" 2>&1
	for h in esx1 esx2 esx3; do
		check "host $h is not live: $(cat "$T/hosts.out")" \
			grep -Eq "^[0-9]+ +live .* $h " "$T/hosts.out"
	done
	echo "written on esx1" >"$M1/shared.txt"
	for m in "$M2" "$M3"; do
		got=$(cat "$m/shared.txt" 2>&1)
		check "read on ${m##*/}: '$got'" test "$got" = "written on esx1"
	done
	echo "written on esx2" >"$M2/two.txt"
	got=$(cat "$M1/two.txt" 2>&1)
	check "read on esx1: '$got'" test "$got" = "written on esx2"

	# -f (fake) mounts nothing; -v shows the command; a bad option fails
	out=$(timeout 60 mount -f -v -t fuse.vmfs "$IMG" "$M4" -o host=esx4 2>&1)
	rc=$?
	check "mount -f: rc $rc: $out" test $rc = 0
	check "mount -f -v did not show the vmfsmount command: $out" \
		eval 'grep -Eq "^mount.fuse.vmfs: $P/sbin/vmfsmount -o (rw,)?host=esx4 $IMG $M4\$" <<<"$out"'
	check "mount -f mounted" eval '! mounted "$M4"'
	out=$(timeout 60 mount -t fuse.vmfs "$IMG" "$M4" -o host= 2>&1)
	rc=$?
	check "mount -o host= (empty): rc $rc, '$out'" \
		eval '[ $rc != 0 ] && grep -q "host=NAME: NAME must have 1 to 63 characters" <<<"$out"'
	: >"$T/zero.img"
	truncate -s 64M "$T/zero.img"
	out=$(timeout 60 mount -t fuse.vmfs "$T/zero.img" "$M4" -o host=esx4 2>&1)
	rc=$?
	check "mount of a zeroed image: rc $rc, '$out' (want 32 and vmfsmount's message)" \
		eval '[ $rc = 32 ] && grep -q "vmfsmount: " <<<"$out"'
	check "a failed mount left a mount" eval '! mounted "$M4"'

	# umount ends each vmfsmount (which leaves the heartbeat)
	for m in "$M1" "$M2" "$M3"; do
		pids=$(daemons "$m")
		check "no vmfsmount process for $m" test -n "$pids"
		check "umount $m" timeout 60 umount "$m"
		for p in $pids; do
			for ((i = 0; i < 300; i++)); do
				kill -0 "$p" 2>/dev/null || break
				sleep 0.1
			done
			check "vmfsmount $p of $m still runs 30 s after umount" eval '! kill -0 $p 2>/dev/null'
		done
	done
	echo "namespace: $checks checks, $fails failures"
	exit $((fails > 0))
fi

# ---- outside ------------------------------------------------------------------
B=${VMFS_BUILD:?VMFS_BUILD not set}
skip() {
	echo "SKIP: $*"
	exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (mount namespaces, mount(8))"
{ exec 9<>/dev/fuse; } 2>/dev/null || skip "/dev/fuse is missing or unusable"
exec 9>&-
for c in unshare mount umount cmake; do
	command -v "$c" >/dev/null || skip "$c not installed"
done
unshare --mount --propagation private true 2>/dev/null ||
	skip "cannot make a mount namespace (unshare --mount)"
T=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/mount-helper.XXXXXX")
T=$(readlink -f "$T")
P=$T/prefix
cleanup() {
	local p i
	for p in $(daemons); do kill -TERM "$p" 2>/dev/null; done
	for ((i = 0; i < 100; i++)); do
		[ -z "$(daemons)" ] && break
		sleep 0.1
	done
	for p in $(daemons); do kill -KILL "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

if ! timeout 120 cmake --install "$B" --prefix "$P" >"$T/install.log" 2>&1; then
	cat "$T/install.log" >&2
	echo "FAIL: cmake --install $B --prefix $P" >&2
	exit 1
fi
[ -x "$P/sbin/vmfsmount" ] || skip "vmfsmount not built (libfuse3 development files missing?)"
check "mount.fuse.vmfs is not installed in P/sbin" test -x "$P/sbin/mount.fuse.vmfs"
before=$(ls -ld /sbin/mount.fuse.vmfs 2>&1)
truncate -s 512M "$T/lun.img"
if ! "$P/sbin/vmfsctl" mkfs -q -H 8 -J 1M --hb-interval 250 --hb-timeout 2000 "$T/lun.img"; then
	echo "FAIL: mkfs" >&2
	exit 1
fi

timeout -k 10 240 unshare --mount --propagation private bash "$0" --in-namespace "$T" "$P"
rc=$?
check "the checks in the namespace failed (rc $rc)" test $rc = 0

# nothing left behind: no daemon, no mount, /sbin as it was; a clean volume
check "vmfsmount still runs: $(daemons)" test -z "$(daemons)"
check "mounts of the test are visible outside the namespace" eval '! grep -q " $T/" /proc/self/mounts'
after=$(ls -ld /sbin/mount.fuse.vmfs 2>&1)
check "/sbin/mount.fuse.vmfs changed outside the namespace: '$before' -> '$after'" \
	test "$before" = "$after"
"$P/sbin/vmfsctl" fsck "$T/lun.img" >"$T/fsck.out" 2>&1
check "fsck after the mounts: rc $?: $(tail -5 "$T/fsck.out")" test $? = 0
echo "$checks checks, $fails failures"
[ "$fails" -eq 0 ]
