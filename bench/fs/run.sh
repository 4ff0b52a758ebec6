#!/usr/bin/env bash
# bench/fs: creates/s and lookup times in one big directory.
# FS_BENCH_N (default 20000) files; image under /tmp; FS_BENCH_DIRECT=0 mounts
# it through the page cache (flushes still reach the disk). Runs without and
# with keep_locks.
set -euo pipefail
TOP=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
B=${VMFS_BUILD:-$TOP/build}/bench/fs/fs_bench
IMG=$(mktemp /tmp/fs-bench-XXXXXX.img)
trap 'rm -f "$IMG"' EXIT
N=${FS_BENCH_N:-20000}
# each mode on a fresh image: locks released after every transaction
# (the library default), then keep_locks (kept locks, group commit)
{
	echo "# bench fs ($(date -u +%F\ %T) UTC, N=$N, FS_BENCH_DIRECT=${FS_BENCH_DIRECT:-1}, $(nproc) CPUs)"
	echo
	echo "Command: \`./run bench fs\` (bench/fs/run.sh). Library calls, no FUSE."
	for keep in 0 1; do
		out=$(FS_BENCH_KEEP=$keep "$B" "$IMG" "$N")
		echo "$out" >&2
		echo
		echo "## FS_BENCH_KEEP=$keep"
		echo '```'
		echo "$out"
		echo '```'
	done
} >"$TOP/bench/results/fs.md.new"
mv "$TOP/bench/results/fs.md.new" "$TOP/bench/results/fs.md"
cat "$TOP/bench/results/fs.md"
