#!/usr/bin/env bash
# The iSCSI backend at the bdev level (test_iscsi_bdev.c): starts istgt with
# 512 and 4096-byte LUNs and a CHAP LUN, and tgt (no COMPARE AND WRITE), on
# 127.0.0.1 at free ports, runs the cmocka program, stops the targets.
set -u
B=${VMFS_BUILD:?VMFS_BUILD not set}
. "$(dirname "$0")/targets.sh"
need_cmds istgt tgtd tgtadm iscsi-inq python3
TMP=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/iscsi-bdev.XXXXXX")
trap 'targets_stop; rm -rf "$TMP"' EXIT
for n in a b c d; do truncate -s 64M "$TMP/$n.img"; done
istgt_start ist512 "$TMP/a.img" 512 || exit 1
u512=$ISTGT_URL
istgt_start ist4k "$TMP/b.img" 4096 || exit 1
u4k=$ISTGT_URL
istgt_start istchap "$TMP/c.img" 512 vmfsuser vmfssecret12 || exit 1
export ISTGT_CHAP=${ISTGT_URL#iscsi://}
export ISTGT_URL=$u512 ISTGT4K_URL=$u4k
tgt_start tgt "$TMP/d.img" || exit 1
export TGT_URL
timeout 240 "$B/tests/iscsi/test_iscsi_bdev" "$@"
