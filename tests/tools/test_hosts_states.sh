#!/usr/bin/env bash
# test_hosts_states.sh - what the read-only tools say about a host that died
# and about its recovery:
#  - a lock holder killed with SIGKILL: `hosts --json` shows its slot "dead"
#    (disk state still live, silent for the timeout) and `locks` shows its
#    lock "(dead esx1)";
#  - a second host takes the lock over: the slot is "free" with a recovery
#    record naming esx2 as the recovering host, the dead host and the
#    replayed count, in `hosts` (text and JSON), `info` and `fsck`, and the
#    lock is shown held by the live esx2.
set -u
VMFSCTL=${VMFSCTL:?VMFSCTL not set}
TMP=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/hoststates.XXXXXX")
export VMFSCTL_RUN_DIR=$TMP
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
# waits (bounded) until FILE has a line matching RE
wait_for() {
	for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
	return 1
}
IMG=$TMP/vol.img
truncate -s 256M "$IMG"
if ! "$VMFSCTL" mkfs -q -H 4 --hb-interval 200 --hb-timeout 1000 "$IMG" >"$TMP/mkfs.out" 2>&1; then
	grep -q "not in this build" "$TMP/mkfs.out" && exit 77
	cat "$TMP/mkfs.out" >&2
	fail "mkfs"
fi

"$VMFSCTL" lock --host esx1 "$IMG" vm1 >"$TMP/esx1.out" &
P1=$!
PIDS+=("$P1")
wait_for "$TMP/esx1.out" '^locked' || fail "esx1 did not lock: $(cat "$TMP/esx1.out")"
timeout 60 "$VMFSCTL" hosts --json "$IMG" >"$TMP/live.json" || fail "hosts (live)"
python3 - "$TMP/live.json" <<'PY' || fail "esx1 not live"
import json, sys
d = json.load(open(sys.argv[1]))
s = [s for s in d["slots"] if s["host"] == "esx1"]
assert len(s) == 1 and s[0]["state"] == "live" and s[0]["recovery"] is None, s
PY
kill -9 "$P1"
wait "$P1" 2>/dev/null

# --- dead --------------------------------------------------------------------
timeout 60 "$VMFSCTL" hosts --json "$IMG" >"$TMP/dead.json" || fail "hosts --json (dead)"
python3 - "$TMP/dead.json" <<'PY' || fail "hosts --json: esx1 not dead: $(cat "$TMP/dead.json")"
import json, sys
d = json.load(open(sys.argv[1]))
s = [s for s in d["slots"] if s["host"] == "esx1"][0]
assert s["state"] == "dead" and s["disk_state"] == "live" and s["dead"] is True, s
assert s["silent_s"] >= 1.0 and s["silent_since"], s
PY
timeout 60 "$VMFSCTL" hosts "$IMG" >"$TMP/dead.txt" 2>/dev/null || fail "hosts (dead)"
grep -qE '^[0-9]+ +dead +dead .*esx1 .*\(silent >= [0-9.]+s, since ' "$TMP/dead.txt" ||
	fail "hosts text: $(cat "$TMP/dead.txt")"
timeout 60 "$VMFSCTL" locks "$IMG" >"$TMP/locks-dead.txt" || fail "locks (dead)"
grep -q 'name=vm1 holders: slot [0-9]* gen [0-9]* (dead esx1)' "$TMP/locks-dead.txt" ||
	fail "locks: holder not dead: $(cat "$TMP/locks-dead.txt")"

# --- recovered by esx2 ---------------------------------------------------------
"$VMFSCTL" lock --host esx2 -w 20 "$IMG" vm1 >"$TMP/esx2.out" &
P2=$!
PIDS+=("$P2")
wait_for "$TMP/esx2.out" '^locked' || fail "esx2 did not take the lock: $(cat "$TMP/esx2.out")"
timeout 60 "$VMFSCTL" hosts --json "$IMG" >"$TMP/rec.json" || fail "hosts --json (recovered)"
python3 - "$TMP/rec.json" <<'PY' || fail "hosts --json: no recovery record: $(cat "$TMP/rec.json")"
import json, sys
d = json.load(open(sys.argv[1]))
s0 = [s for s in d["slots"] if s["recovery"]]
assert len(s0) == 1, d
s0 = s0[0]
assert s0["state"] == "free" and s0["disk_state"] == "free", s0
r = s0["recovery"]
assert r["dead_host"] == "esx1" and r["by_host"] == "esx2", r
s1 = d["slots"][r["by_slot"]]
assert r["replayed"] == 0 and r["by_gen"] == s1["gen"] and r["time"].endswith("UTC"), r
assert s1["state"] == "live" and s1["host"] == "esx2", s1
PY
timeout 60 "$VMFSCTL" hosts "$IMG" >"$TMP/rec.txt" 2>/dev/null || fail "hosts (recovered)"
grep -q 'last recovery: esx1 (gen [0-9]*) recovered by esx2 (slot [0-9]* gen [0-9]*) at .* UTC, 0 journal transaction(s) replayed' \
	"$TMP/rec.txt" || fail "hosts text: no recovery line: $(cat "$TMP/rec.txt")"
timeout 60 "$VMFSCTL" locks "$IMG" >"$TMP/locks-rec.txt" || fail "locks (recovered)"
grep -q 'name=vm1 holders: slot [0-9]* gen [0-9]* (live esx2)' "$TMP/locks-rec.txt" ||
	fail "locks: not held by esx2: $(cat "$TMP/locks-rec.txt")"
timeout 60 "$VMFSCTL" info "$IMG" >"$TMP/info.txt" || fail "info"
grep -q 'last recovery: esx1 gen [0-9]* by esx2 (slot [0-9]*' "$TMP/info.txt" ||
	fail "info: no recovery: $(cat "$TMP/info.txt")"
kill "$P2"
wait "$P2" 2>/dev/null
timeout 120 "$VMFSCTL" fsck -n "$IMG" >"$TMP/fsck.txt" 2>&1 || fail "fsck: $(cat "$TMP/fsck.txt")"
grep -q 'note: slot [0-9]*: esx1 (gen [0-9]*) was recovered by esx2 (slot [0-9]*) at .*, 0 journal transactions replayed' \
	"$TMP/fsck.txt" || fail "fsck: no recovery note: $(cat "$TMP/fsck.txt")"
timeout 120 "$VMFSCTL" fsck -n --json "$IMG" >"$TMP/fsck.json" 2>&1 || fail "fsck --json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); r=d["recoveries"]; assert len(r)==1 and r[0]["by_host"]=="esx2" and d["clean"], d' \
	"$TMP/fsck.json" || fail "fsck --json: $(cat "$TMP/fsck.json")"
echo "tools_hosts_states: all checks passed"
