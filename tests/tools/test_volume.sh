#!/usr/bin/env bash
# vmfsctl grow and tune end to end, with a second host live on the volume
# (a `vmfsctl lock` holding a lock, started here and stopped by its PID):
# the image grows (truncate), `grow` grows the volume into it (online), df
# and info show the new size, a file copied in before and one copied in
# after are intact, shrinking and growing past the device are refused;
# `tune -L` works while the other host is live, `tune --hb-interval` is
# refused naming it, and works once it left; fsck is clean throughout.
set -u
V=${VMFSCTL:?VMFSCTL not set}
T=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/volume.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
. "$(dirname "$0")/../checks.sh"

# run EXPECTED_RC CMD...: runs vmfsctl, keeps stdout/stderr in $T/out $T/err.
run() {
	local want=$1 rc
	shift
	checks=$((checks + 1))
	timeout 120 "$V" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" != "$want" ]; then
		fail "vmfsctl $* exited $rc, expected $want"
		sed 's/^/  | /' "$T/out" "$T/err" | head -20 >&2
		return 1
	fi
	return 0
}
jget() { # jget FILE KEY
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d=d[0] if isinstance(d,list) else d; print(d[sys.argv[2]])' "$1" "$2"
}

img=$T/vol.img
truncate -s 64M "$img"
run 0 mkfs -L before -b 64K -H 4 -J 1M --hb-interval 200 --hb-timeout 1600 "$img"
head -c 3000000 /dev/urandom >"$T/a.bin"
head -c 5000000 /dev/urandom >"$T/b.bin"
run 0 cp "$T/a.bin" "$img:/a.bin"

# a second host, live until we stop it
timeout 300 "$V" lock --host otherhost "$img" held >"$T/lock.out" 2>&1 &
lockpid=$!
pids+=("$lockpid")
for _ in $(seq 300); do grep -q locked "$T/lock.out" && break; sleep 0.1; done
check "the lock holder is live" grep -q locked "$T/lock.out"

truncate -s 600M "$img"
run 0 grow --json "$img"
check "grow --json new_size" test "$(jget "$T/out" new_size)" = $((600 << 20))
check "grow --json old_size" test "$(jget "$T/out" old_size)" = $((64 << 20))
check "grow added an FB cluster" test "$(jget "$T/out" new_fb_clusters)" = 1
run 0 info --json "$img"
check "info shows the new size" test "$(jget "$T/out" volume_size)" = $((600 << 20))
run 0 df --json "$img"
check "df shows the new size" test "$(jget "$T/out" blocks)" -gt 9000 # 64 KiB blocks
run 0 grow "$img"
check "grow again: nothing to do" grep -q "nothing to do" "$T/out"
run 1 grow --size 32M "$img"
check "shrink refused" grep -q "cannot shrink" "$T/err"
run 1 grow --size 10G "$img"
check "beyond the device refused" grep -q "beyond the device" "$T/err"
run 0 cp "$T/b.bin" "$img:/b.bin"

# tune: the label while the other host is live; the timing refused
run 0 tune -L after "$img"
run 0 info --json "$img"
check "label changed" test "$(jget "$T/out" label)" = after
run 1 tune --hb-interval 300 --hb-timeout 2400 "$img"
check "timing refused naming the live host" grep -q "otherhost" "$T/err"
run 0 info --json "$img"
check "timing unchanged" test "$(jget "$T/out" hb_interval_ms)" = 200

kill -TERM "$lockpid"
wait "$lockpid"
pids=()
run 0 tune --hb-interval 300 --hb-timeout 2400 "$img"
run 0 info --json "$img"
check "interval changed" test "$(jget "$T/out" hb_interval_ms)" = 300
check "timeout changed" test "$(jget "$T/out" hb_timeout_ms)" = 2400
run 0 hosts "$img"
check "the tuning host left its slot" test -z "$(awk '$2 == "live"' "$T/out")"
run 1 tune --hb-interval 300 --hb-timeout 1000 "$img"
check "bad timing refused" grep -q "timeout" "$T/err"

run 0 fsck "$img"
run 0 cp "$img:/a.bin" "$T/a.out"
check "file copied before the grow" cmp -s "$T/a.bin" "$T/a.out"
run 0 cp "$img:/b.bin" "$T/b.out"
check "file copied after the grow" cmp -s "$T/b.bin" "$T/b.out"
checks_done
