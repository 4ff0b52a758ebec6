#!/usr/bin/env bash
# test_top.sh - `vmfsctl top` under tmux: the ncurses screen shows a lock
# holder's host live and its lock with its holder, then, after the holder is
# killed and a second host takes the lock over, the dead host's recovery by
# the survivor; 'q' quits. Batch mode (-b -n 2) prints two plain frames.
# Waits poll capture-pane with deadlines (no fixed sleeps).
set -u
VMFSCTL=${VMFSCTL:?VMFSCTL not set}
command -v tmux >/dev/null || { echo "SKIP: no tmux"; exit 77; }
TMP=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/top.XXXXXX")
export VMFSCTL_RUN_DIR=$TMP
SOCK=$TMP/tmux.sock
PIDS=()
cleanup() {
	tmux -S "$SOCK" kill-server 2>/dev/null
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	[ -S "$SOCK" ] && tmux -S "$SOCK" capture-pane -p -t top >&2 2>/dev/null
	exit 1
}
# screen_has RE [SECS]: polls the pane until it shows RE (deadline SECS)
screen_has() {
	local end=$((SECONDS + ${2:-20}))
	while [ $SECONDS -lt $end ]; do
		tmux -S "$SOCK" capture-pane -p -t top 2>/dev/null | grep -qE "$1" && return 0
		sleep 0.1
	done
	return 1
}
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
wait_for "$TMP/esx1.out" '^locked' || fail "esx1 did not lock"

# --- batch mode ------------------------------------------------------------------
timeout 30 "$VMFSCTL" top -b -n 2 -d 0.2 "$IMG" >"$TMP/batch.txt" || fail "top -b"
[ "$(grep -c '^vmfsctl top - ' "$TMP/batch.txt")" -eq 2 ] || fail "not 2 frames: $(cat "$TMP/batch.txt")"
grep -qE '^ +[0-9]+ +esx1 +live ' "$TMP/batch.txt" || fail "batch: esx1 not live: $(cat "$TMP/batch.txt")"
grep -qE '^ +vm1 +exclusive +esx1 \(live\)' "$TMP/batch.txt" || fail "batch: lock: $(cat "$TMP/batch.txt")"

# --- ncurses under tmux -------------------------------------------------------------
tmux -S "$SOCK" new-session -d -s top -x 160 -y 50 \
	"VMFSCTL_RUN_DIR=$TMP $VMFSCTL top -d 0.2 $IMG; echo top-exited \$?; sleep 30" ||
	fail "tmux new-session"
screen_has '^ +[0-9]+ +esx1 +live ' || fail "screen: esx1 not live"
screen_has 'vm1 +exclusive +esx1 \(live\)' || fail "screen: lock of esx1"
screen_has 'RATES +heartbeat writes [0-9.]+/s' || fail "screen: rates"
kill -9 "$P1"
screen_has '^ +[0-9]+ +esx1 +dead ' || fail "screen: esx1 not dead"
"$VMFSCTL" lock --host esx2 -w 20 "$IMG" vm1 >"$TMP/esx2.out" &
PIDS+=($!)
wait_for "$TMP/esx2.out" '^locked' || fail "esx2 did not take the lock"
screen_has 'vm1 +exclusive +esx2 \(live\)' || fail "screen: lock not esx2's"
screen_has 'esx1 \(gen [0-9]+\) recovered by esx2 \(slot [0-9]+\), 0 txn replayed' ||
	fail "screen: no recovery"
tmux -S "$SOCK" send-keys -t top q
screen_has '^top-exited 0' 10 || fail "q did not quit top"
echo "tools_top: all checks passed"
