#!/usr/bin/env bash
# A target that stops answering (SIGSTOP) or dies (SIGKILL) in the middle of
# a workload: operations fail with a clear error within the timeout, nothing
# hangs, and the same bdev works again once the target is back
# (iscsi_lost.c). istgt, timeout=4.
set -u
B=${VMFS_BUILD:?VMFS_BUILD not set}
. "$(dirname "$0")/targets.sh"
need_cmds istgt iscsi-inq python3
TMP=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/iscsi-lost.XXXXXX")
trap 'targets_stop; rm -rf "$TMP"' EXIT
truncate -s 64M "$TMP/a.img"
istgt_start ist "$TMP/a.img" 512 || exit 1
url="$ISTGT_URL?timeout=4&retries=2"
timeout 170 "$B/tests/iscsi/iscsi_lost" "$url" "$ISTGT_PID" "$TMP" &
prog=$!
# restart the target (same configuration, same port) once it has been lost
for i in $(seq 1 900); do
    [ -e "$TMP/lost" ] && break
    kill -0 "$prog" 2>/dev/null || break
    sleep 0.1
done
if [ -e "$TMP/lost" ]; then
    istgt_restart ist || echo "istgt did not come back"
    touch "$TMP/back"
fi
wait "$prog"
rc=$?
[ "$rc" = 0 ] && echo "1 passed, 0 failed" && exit 0
echo "0 passed, 1 failed (iscsi_lost exit $rc)"
exit 1
