#!/usr/bin/env bash
# fsck refuses to repair a volume a live host has mounted, and says so: a
# damaged image (wrong link count) with a host holding a lock through
# `vmfsctl lock` (its heartbeat moves): fsck -y exits 4, names the live
# host, changes nothing; once the host has left, fsck -y repairs (exit 1)
# and the next fsck is clean.
set -u
: "${VMFSCTL:?}" "${FSCK_GOLDEN:?}"
tmp=${VMFS_TEST_TMP:-/tmp}/fsck-live-refuse
rm -rf "$tmp" && mkdir -p "$tmp"
img=$tmp/img
fail() { echo "FAIL: $*"; exit 1; }

"$FSCK_GOLDEN" make link_count "$img" || fail make
"$VMFSCTL" lock --host livehost "$img" held -- sleep 6 >"$tmp/lock.out" 2>&1 &
lockpid=$!
for _ in $(seq 50); do
	grep -q live <("$VMFSCTL" hosts "$img" 2>/dev/null) && break
	sleep 0.1
done
"$VMFSCTL" fsck -y "$img" >"$tmp/y" 2>&1
rc=$?
cat "$tmp/y"
[ $rc = 4 ] || fail "fsck -y with a live host exited $rc, not 4"
grep -q 'link count 5, expected 2 \[not fixed: hosts are live\]' "$tmp/y" || fail "no refusal line"
grep -q 'note: 1 live host (heartbeat moving): nothing repaired' "$tmp/y" || fail "no live-host note"
"$VMFSCTL" fsck -p "$img" >"$tmp/p" 2>&1
[ $? = 4 ] || fail "fsck -p with a live host did not exit 4"
wait $lockpid || fail "the lock holder failed: $(cat "$tmp/lock.out")"
# The holder left: the image differs only by its heartbeat slot and the lock
# unit it used; the inode is still damaged.
"$VMFSCTL" fsck -n "$img" >"$tmp/n" 2>&1
[ $? = 4 ] || fail "the damage disappeared while a host was live"
"$VMFSCTL" fsck -y "$img" >"$tmp/y2" 2>&1
[ $? = 1 ] || { cat "$tmp/y2"; fail "fsck -y after the host left did not repair"; }
"$VMFSCTL" fsck -n "$img" >/dev/null 2>&1 || fail "not clean after the repair"
rm -rf "$tmp"
echo PASS
