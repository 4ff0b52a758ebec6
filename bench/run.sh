#!/usr/bin/env bash
# bench/run.sh [NAME]: runs bench/NAME/run.sh, or every bench/*/run.sh when
# no NAME is given. Results go to bench/results/NAME.md. Not run in CI.
# VMFS_BUILD (default: build/) names the build directory holding the binaries.
# BENCH_TIMEOUT (default 7200 s) bounds each benchmark (SIGTERM at the end).
# Then bench/report.py draws the tables of every results/*.md as PNGs and
# rewrites bench/results/README.md (headline ratios, links to the plots).
set -euo pipefail
TOP=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
export VMFS_BUILD=${VMFS_BUILD:-$TOP/build}
mkdir -p "$TOP/bench/results"
if [ $# -gt 0 ]; then
	names=("$@")
else
	names=()
	for f in "$TOP"/bench/*/run.sh; do
		[ -e "$f" ] && names+=("$(basename "$(dirname "$f")")")
	done
fi
rc=0
for n in "${names[@]}"; do
	if [ ! -f "$TOP/bench/$n/run.sh" ]; then
		echo "bench/run.sh: no benchmark '$n' (bench/$n/run.sh missing)" >&2
		exit 2
	fi
	echo "==> bench $n"
	started=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
	if timeout -s TERM "${BENCH_TIMEOUT:-7200}" bash "$TOP/bench/$n/run.sh"; then
		timeout 60 python3 "$TOP/bench/report.py" "$TOP/bench/results" --stamp "$n" "$started" || rc=1
	else
		echo "bench $n failed" >&2
		rc=1
	fi
done
# plots of the tables, links, and bench/results/README.md (headline ratios)
timeout 600 python3 "$TOP/bench/report.py" "$TOP/bench/results" || { echo "bench/report.py failed" >&2; rc=1; }
exit $rc
