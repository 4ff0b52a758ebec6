#!/usr/bin/env bash
# test_lm_cli.sh - the lock-manager commands of vmfsctl on a fresh volume:
#  - hosts/locks --json print valid JSON; hosts sees a holder's heartbeat move;
#  - two concurrent `vmfsctl lock DEV name -- sh -c CRITICAL-SECTION` loops
#    never interleave their critical sections;
#  - a held lock (lock without command, "locked" line) makes `lock -w 0`
#    exit 3, shows in `locks`, and `unlock` releases it;
#  - read-only shared locks are held by two holders at once;
#  - hosts killed with SIGKILL on a -H 4 volume: `hosts` shows their slots
#    dead (silent past the timeout), text and JSON, not live;
#  - usage errors exit 2, --help exits 0, a non-volume exits 1 with a message.
set -u
VMFSCTL=${VMFSCTL:?VMFSCTL not set}
TMP=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/lmcli.XXXXXX")
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
IMG=$TMP/vol.img
truncate -s 1G "$IMG"
if ! "$VMFSCTL" mkfs -q -H 16 --hb-interval 250 --hb-timeout 2000 "$IMG" >"$TMP/mkfs.out" 2>&1; then
	grep -q "not in this build" "$TMP/mkfs.out" && exit 77
	cat "$TMP/mkfs.out" >&2
	fail "mkfs"
fi

# --- JSON, and a heartbeat seen moving -------------------------------------
"$VMFSCTL" lock --host clihost "$IMG" held1 >"$TMP/h1.out" &
PIDS+=($!)
for _ in $(seq 100); do grep -q '^locked' "$TMP/h1.out" && break; sleep 0.05; done
grep -q '^locked held1 at 0x' "$TMP/h1.out" || fail "no 'locked' line: $(cat "$TMP/h1.out")"
"$VMFSCTL" hosts --json --watch 0.7 "$IMG" >"$TMP/hosts.json" || fail "hosts --json"
python3 -m json.tool "$TMP/hosts.json" >/dev/null || fail "hosts --json is not JSON"
python3 - "$TMP/hosts.json" <<'EOF' || fail "hosts: clihost not alive"
import json, sys
d = json.load(open(sys.argv[1]))
live = [s for s in d["slots"] if s["state"] == "live"]
assert len(live) == 1, live
assert live[0]["host"] == "clihost" and live[0]["liveness"] == "alive", live
assert live[0]["moved_during_watch"] is True
EOF
"$VMFSCTL" locks --json "$IMG" >"$TMP/locks.json" || fail "locks --json"
python3 - "$TMP/locks.json" <<'EOF' || fail "locks --json content"
import json, sys
d = json.load(open(sys.argv[1]))
held = [l for l in d["locks"] if l["name"] == "held1"]
assert len(held) == 1 and held[0]["mode"] == "exclusive", d
assert held[0]["holders"][0]["state"] == "live" and held[0]["holders"][0]["host"] == "clihost"
EOF
"$VMFSCTL" locks "$IMG" | grep -q "name=held1 holders: slot .* (live clihost)" || fail "locks text"

# --- busy, unlock ------------------------------------------------------------
"$VMFSCTL" lock -w 0 "$IMG" held1 -- true 2>"$TMP/busy.err"
rc=$?
[ $rc -eq 3 ] || fail "lock -w 0 on a held lock: exit $rc, want 3"
grep -q "is busy" "$TMP/busy.err" || fail "busy message: $(cat "$TMP/busy.err")"
"$VMFSCTL" lock -w 0.5 "$IMG" held1 -- true 2>/dev/null
[ $? -eq 3 ] || fail "lock -w 0.5 on a held lock must time out with 3"
"$VMFSCTL" unlock "$IMG" held1 || fail "unlock"
wait "${PIDS[0]}" || fail "holder exit status"
grep -q '^unlocked held1' "$TMP/h1.out" || fail "holder did not say unlocked"
"$VMFSCTL" lock -w 0 "$IMG" held1 -- true || fail "lock after unlock"
"$VMFSCTL" unlock "$IMG" held1 2>/dev/null && fail "unlock of a lock nobody holds must fail"
"$VMFSCTL" unlock "$IMG" never-used-name 2>&1 | grep -q "no such lock" || fail "unlock unknown"

# --- mutual exclusion of commands ---------------------------------------------
LOG=$TMP/crit.log
crit() { # crit ID: 8 critical sections appending start/end lines
	for _ in $(seq 8); do
		"$VMFSCTL" lock -w 60 "$IMG" crit -- sh -c \
			"echo start $1 >>$LOG; sleep 0.05; echo end $1 >>$LOG" || return 1
	done
}
crit A &
a=$!
crit B &
b=$!
wait $a || fail "crit A"
wait $b || fail "crit B"
[ "$(wc -l <"$LOG")" -eq 32 ] || fail "crit log has $(wc -l <"$LOG") lines"
awk 'NR % 2 == 1 { if ($1 != "start") exit 1; id = $2 }
     NR % 2 == 0 { if ($1 != "end" || $2 != id) exit 1 }' "$LOG" ||
	fail "critical sections interleaved: $(tr '\n' ' ' <"$LOG")"
grep -q "start A" "$LOG" && grep -q "start B" "$LOG" || fail "one side never ran"
# the command's exit status comes back
"$VMFSCTL" lock "$IMG" crit -- sh -c 'exit 7'
[ $? -eq 7 ] || fail "command status not passed on"

# --- shared mode -----------------------------------------------------------------
"$VMFSCTL" lock -m sh "$IMG" shared >"$TMP/s1.out" &
s1=$!
"$VMFSCTL" lock -m sh "$IMG" shared >"$TMP/s2.out" &
s2=$!
PIDS+=($s1 $s2)
for _ in $(seq 100); do
	grep -q '^locked' "$TMP/s1.out" && grep -q '^locked' "$TMP/s2.out" && break
	sleep 0.05
done
grep -q 'mode read-only' "$TMP/s1.out" && grep -q 'mode read-only' "$TMP/s2.out" ||
	fail "two read-only holders"
"$VMFSCTL" lock -w 0 "$IMG" shared -- true 2>/dev/null
[ $? -eq 3 ] || fail "exclusive over two readers must be busy"
"$VMFSCTL" locks "$IMG" | grep "name=shared" | grep -q "read-only" || fail "locks shows shared"
kill -TERM $s1 $s2
wait $s1 || fail "reader 1 exit"
wait $s2 || fail "reader 2 exit"
"$VMFSCTL" lock -w 0 "$IMG" shared -- true || fail "exclusive after readers left"

# --- usage and errors --------------------------------------------------------------
for c in hosts locks lock unlock; do
	"$VMFSCTL" $c --help | grep -q Usage || fail "$c --help"
done
"$VMFSCTL" lock -m zz "$IMG" x -- true 2>/dev/null
[ $? -eq 2 ] || fail "bad mode must exit 2"
"$VMFSCTL" lock "$IMG" 2>/dev/null
[ $? -eq 2 ] || fail "missing NAME must exit 2"
"$VMFSCTL" hosts --watch abc "$IMG" 2>/dev/null
[ $? -eq 2 ] || fail "bad --watch must exit 2"
"$VMFSCTL" lock "$IMG" @12345 -- true 2>&1 | grep -q "bad lock offset" || fail "bad offset"
truncate -s 8M "$TMP/zero.img"
"$VMFSCTL" hosts "$TMP/zero.img" 2>&1 | grep -q "not a libvmfs volume" || fail "non-volume"
"$VMFSCTL" locks "$TMP/zero.img" 2>/dev/null
[ $? -eq 1 ] || fail "locks on a non-volume must exit 1"
# --- -H 4, four hosts killed: their slots are shown dead --------------------
IMG4=$TMP/h4.img
truncate -s 256M "$IMG4"
"$VMFSCTL" mkfs -q -H 4 --hb-interval 200 --hb-timeout 1000 "$IMG4" || fail "mkfs -H 4"
K=()
for i in 1 2 3 4; do
	"$VMFSCTL" lock --host "k$i" "$IMG4" "k$i" >"$TMP/k$i.out" &
	K+=($!)
done
for i in 1 2 3 4; do
	for _ in $(seq 200); do grep -q '^locked' "$TMP/k$i.out" && break; sleep 0.05; done
	grep -q '^locked' "$TMP/k$i.out" || fail "k$i did not lock: $(cat "$TMP/k$i.out")"
done
[ "$("$VMFSCTL" hosts "$IMG4" | grep -c ' alive ')" -eq 4 ] || fail "4 live hosts not alive"
kill -9 "${K[@]}"
wait "${K[@]}" 2>/dev/null
"$VMFSCTL" hosts "$IMG4" >"$TMP/dead.txt" 2>"$TMP/dead.err" || fail "hosts after the kills"
[ "$(grep -cE '^[0-3] +dead +dead ' "$TMP/dead.txt")" -eq 4 ] || fail "not 4 dead slots: $(cat "$TMP/dead.txt")"
grep -q "watching for the timeout" "$TMP/dead.err" || fail "no extended watch note"
"$VMFSCTL" hosts --json "$IMG4" >"$TMP/dead.json" || fail "hosts --json after the kills"
python3 - "$TMP/dead.json" <<'EOF' || fail "hosts --json: killed hosts not dead"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["watched_s"] >= 1.0, d["watched_s"]
assert all(s["dead"] and s["liveness"] == "dead" and s["state"] == "dead"
           and s["disk_state"] == "live" and s["silent_s"] >= 1.0 for s in d["slots"]), d
EOF
"$VMFSCTL" locks --watch 1.2 "$IMG4" >"$TMP/deadlocks.txt" || fail "locks --watch"
[ "$(grep -c '(dead k[1-4])' "$TMP/deadlocks.txt")" -eq 4 ] || fail "locks: holders not dead: $(cat "$TMP/deadlocks.txt")"
"$VMFSCTL" locks --watch 0.3 "$IMG4" | grep -q '(silent k1)' || fail "locks: short watch not silent"
# a short explicit watch cannot tell: silent, not dead
"$VMFSCTL" hosts --watch 0.3 "$IMG4" | grep -qE '^0 +live +silent ' || fail "short watch"

echo "lm_cli: all checks passed"
