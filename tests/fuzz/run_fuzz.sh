#!/usr/bin/env bash
# run_fuzz.sh MODE HARNESS: MODE replay (run the seeds and the regression
# inputs once), short (libFuzzer for FUZZ_SECONDS, default 15), long
# (FUZZ_LONG_SECONDS, default 600). Seeds are generated once per build
# directory into $VMFS_BUILD/fuzz-seeds (never into the repository): fresh
# native volumes, their metadata blocks, and the real VMFS5/6 datastores of
# $VMFS_SHARED/data when present. A crash, leak, hang (-timeout) or
# sanitizer report fails the test; its input is left in
# $VMFS_BUILD/fuzz-artifacts/ to become tests/fuzz/regress/HARNESS/NAME.
set -u
mode=$1 h=$2
here=$(cd "$(dirname "$0")" && pwd)
: "${FUZZ_BIN:?}" "${VMFS_BUILD:?}"
seeds=$VMFS_BUILD/fuzz-seeds
mkdir -p "$seeds"
(
	flock 9
	if [ ! -e "$seeds/.done" ] && [ -n "${FUZZ_SEED:-}" ]; then
		rm -rf "$seeds"/{native,records,real} && mkdir -p "$seeds"/{native,records,real}
		"$FUZZ_SEED" native "$seeds/native" && "$FUZZ_SEED" records "$seeds/records" || exit 1
		for v in 5 6; do
			gz=${VMFS_SHARED:-/nonexistent}/data/vmfs$v.bin.gz
			[ -r "$gz" ] && { "$FUZZ_SEED" real "$gz" "$seeds/real" vmfs$v || exit 1; }
		done
		touch "$seeds/.done"
	fi
) 9>"$seeds/.lock" || { echo "FAIL: seed generation"; exit 1; }

regress=$here/regress/$h
mkdir -p "$regress" 2>/dev/null || true
case $h in
vmfsr) dirs=("$seeds/real" "$seeds/native"); maxlen=1300000 ;;
records) dirs=("$seeds/records"); maxlen=4096 ;;
*) dirs=("$seeds/native"); maxlen=400000 ;;
esac
existing=()
for d in "${dirs[@]}" "$regress"; do [ -d "$d" ] && existing+=("$d"); done

if [ "$mode" = replay ]; then
	exec "$FUZZ_BIN" "${existing[@]}"
fi
secs=${FUZZ_SECONDS:-15}
[ "$mode" = long ] && secs=${FUZZ_LONG_SECONDS:-600}
corpus=$VMFS_BUILD/fuzz-corpus/$h
art=$VMFS_BUILD/fuzz-artifacts
mkdir -p "$corpus" "$art"
# The regression inputs first, each alone: a fixed bug must stay fixed.
if [ -n "$(ls -A "$regress" 2>/dev/null)" ]; then
	"$FUZZ_BIN" -runs=0 -timeout=30 "$regress"/* || { echo "FAIL: a regression input fails again"; exit 1; }
fi
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
	"$FUZZ_BIN" -max_total_time="$secs" -timeout=30 -rss_limit_mb=4096 -max_len="$maxlen" \
	-artifact_prefix="$art/$h-" -print_final_stats=1 "$corpus" "${existing[@]}" 2>&1 |
	tail -40
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] || { echo "FAIL: fuzz_$h exited $rc; input in $art"; exit 1; }
echo "PASS: fuzz_$h ran ${secs}s, corpus $(ls "$corpus" | wc -l) inputs"
