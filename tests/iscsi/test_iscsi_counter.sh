#!/usr/bin/env bash
# The lock-counter test over iSCSI: 16 contender processes, each its own
# session, add 1 to one counter sector N times each by read + ATS retry
# loops; the final count must be exact. Against istgt (COMPARE AND WRITE)
# and tgt (reservation-mutex fallback). N: $ISCSI_COUNTER_N (default 20).
set -u
B=${VMFS_BUILD:?VMFS_BUILD not set}
. "$(dirname "$0")/targets.sh"
need_cmds istgt tgtd tgtadm iscsi-inq python3
TMP=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/iscsi-counter.XXXXXX")
trap 'targets_stop; rm -rf "$TMP"' EXIT
N=${ISCSI_COUNTER_N:-20}
truncate -s 16M "$TMP/a.img"
truncate -s 16M "$TMP/b.img"
istgt_start ist "$TMP/a.img" 512 || exit 1
tgt_start tgt "$TMP/b.img" || exit 1
fails=0
for url in "$ISTGT_URL" "$TGT_URL"; do
    out=$(timeout 150 "$B/tests/iscsi/iscsi_counter" "$url?timeout=60" 16 "$N")
    rc=$?
    echo "$url: $out"
    case $url in
    "$ISTGT_URL") want=compare-and-write ;;
    *) want=reservation ;;
    esac
    [ "$rc" = 0 ] || { echo "FAIL: counter on $url (exit $rc)"; fails=$((fails + 1)); }
    case $out in
    *"method=$want "*) ;;
    *) echo "FAIL: $url did not use $want"; fails=$((fails + 1)) ;;
    esac
done
# Negative control: the same check on plain read+write (no ATS) must see
# lost updates, or the check would prove nothing.
out=$(timeout 100 "$B/tests/iscsi/iscsi_counter" "$TGT_URL" 16 100 9 noats)
rc=$?
echo "no ATS: $out"
[ "$rc" = 1 ] || { echo "FAIL: plain read+write lost no update (exit $rc)"; fails=$((fails + 1)); }
[ "$fails" = 0 ] && echo "1 passed, 0 failed" && exit 0
echo "0 passed, $fails failed"
exit 1
