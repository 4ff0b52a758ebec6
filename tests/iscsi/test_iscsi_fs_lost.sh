#!/usr/bin/env bash
# The target dies under a mounted file system: a host creates fsync'd files
# over istgt (timeout=4); istgt is killed (SIGKILL). The host's next
# operation must fail with a clear error within a bound and the host must
# exit, not hang. The target comes back (same image, same port): a new
# mount replays the dead host's journal, every file the host had fsync'd is
# there with its content, and fsck is clean (after fsck -p releases the
# dead host's stale lock entries).
set -u
B=${VMFS_BUILD:?VMFS_BUILD not set}
V=${VMFSCTL:?VMFSCTL not set}
. "$(dirname "$0")/targets.sh"
need_cmds istgt iscsi-inq python3
TMP=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/iscsi-fslost.XXXXXX")
W=""
trap '[ -n "$W" ] && kill -9 "$W" 2>/dev/null; targets_stop; rm -rf "$TMP"' EXIT
fail() {
    echo "FAIL: $*"
    exit 1
}
truncate -s 128M "$TMP/a.img"
istgt_start ist "$TMP/a.img" 512 || exit 1
url="$ISTGT_URL?timeout=4&retries=2"
timeout 120 "$V" mkfs -q -H 8 -J 1M --hb-interval 250 --hb-timeout 2000 "$url" || fail "mkfs"
"$B/tests/iscsi/iscsi_ns_host" work "$url" /d esx1 >"$TMP/work.out" 2>"$TMP/work.err" &
W=$!
for _ in $(seq 1200); do grep -q "^ok 20$" "$TMP/work.out" && break; sleep 0.1; done
grep -q "^ok 20$" "$TMP/work.out" || { cat "$TMP/work.err"; fail "the workload never got going"; }
kill -9 "$ISTGT_PID"
t0=$(date +%s.%N)
# bound: the request timeout (4 s) plus the reconnect rounds, with room
# for a loaded machine
for _ in $(seq 1200); do kill -0 "$W" 2>/dev/null || break; sleep 0.1; done
kill -0 "$W" 2>/dev/null && fail "the host still runs 120 s after its target died (hang)"
t1=$(date +%s.%N)
wait "$W"
rc=$?
W=""
echo "host exited $rc after $(python3 -c "print(round($t1 - $t0, 1))") s:"
grep -v "^ok" "$TMP/work.out"
[ "$rc" = 3 ] || { cat "$TMP/work.err"; fail "the host did not report an error (exit $rc)"; }
grep -q "^err " "$TMP/work.out" || fail "no error line"
k=$(grep -c "^ok " "$TMP/work.out")
# the target comes back with the same configuration
istgt_restart ist || fail "istgt did not come back"
out=$(timeout 180 "$B/tests/iscsi/iscsi_ns_host" verify "$url" /d esx2 "$k") ||
    fail "after the target came back: $out"
echo "$out"
# the dead host's lock entries stay until someone needs those locks (stale
# holders are dropped at the next acquire); fsck -p releases them as an
# admin's preen run would (exit 1: corrected), and then all is clean
timeout 120 "$V" fsck -p "$url"
rc=$?
[ $rc -le 1 ] || fail "fsck -p exit $rc"
timeout 120 "$V" fsck "$url" || fail "fsck not clean"
echo "1 passed, 0 failed"
