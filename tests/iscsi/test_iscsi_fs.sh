#!/usr/bin/env bash
# The file system on an iSCSI LUN, through the tools: vmfsctl mkfs of an
# iscsi:// URI, three hosts (processes, each its own session) mount it, read
# each other's files bit-exact and see EBUSY on a file another host holds
# open for writing (iscsi_fs_hosts.c); then vmfsctl mkdir/ls/fsck over the
# same URI. Against istgt (COMPARE AND WRITE) and tgt (reservation fallback).
set -u
B=${VMFS_BUILD:?VMFS_BUILD not set}
V=${VMFSCTL:?VMFSCTL not set}
. "$(dirname "$0")/targets.sh"
need_cmds istgt tgtd tgtadm iscsi-inq python3
TMP=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/iscsi-fs.XXXXXX")
trap 'targets_stop; rm -rf "$TMP"' EXIT
truncate -s 256M "$TMP/a.img"
truncate -s 256M "$TMP/b.img"
istgt_start ist "$TMP/a.img" 512 || exit 1
tgt_start tgt "$TMP/b.img" || exit 1
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
for url in "$ISTGT_URL" "$TGT_URL"; do
    echo "== $url"
    timeout 120 "$V" mkfs -q -H 8 -J 1M --hb-interval 250 --hb-timeout 2000 "$url" ||
        { fail "mkfs $url"; continue; }
    timeout 170 "$B/tests/iscsi/iscsi_fs_hosts" "$url" || fail "three hosts on $url"
    timeout 60 "$V" mkdir "$url" /vms >/dev/null || fail "mkdir on $url"
    out=$(timeout 60 "$V" ls "$url" /)
    for f in f0 f1 f2 vms; do
        grep -qw "$f" <<<"$out" || fail "ls of $url misses $f"
    done
    timeout 120 "$V" fsck "$url" || fail "fsck of $url not clean"
    # the image behind the target holds the same volume: fsck it directly
done
timeout 120 "$V" fsck "$TMP/a.img" >/dev/null || fail "fsck of the istgt image file"
[ "$fails" = 0 ] && echo "1 passed, 0 failed" && exit 0
echo "0 passed, $fails failed"
exit 1
