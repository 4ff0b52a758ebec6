#!/usr/bin/env bash
# bench/fs: creates/s and lookup times in one big directory.
# FS_BENCH_N (default 20000) files; image under /tmp; FS_BENCH_DIRECT=0 mounts
# it through the page cache (flushes still reach the disk).
set -euo pipefail
TOP=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
B=${VMFS_BUILD:-$TOP/build}/bench/fs/fs_bench
IMG=$(mktemp /tmp/fs-bench-XXXXXX.img)
trap 'rm -f "$IMG"' EXIT
N=${FS_BENCH_N:-20000}
out=$("$B" "$IMG" "$N")
echo "$out"
{ echo "# bench fs ($(date -u +%F\ %T) UTC, N=$N, FS_BENCH_DIRECT=${FS_BENCH_DIRECT:-1})"; echo '```'; echo "$out"; echo '```'; } \
	>"$TOP/bench/results/fs.md"
