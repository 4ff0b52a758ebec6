#!/usr/bin/env bash
# bench/fio: fio data path through vmfsmount and kernel ext4 on a loop device,
# in one run: 4 KiB random read/write at QD1 and QD32, 1 MiB sequential
# read/write, direct=1, on a preallocated file. VMFS_OLD_BUILD=DIR adds an
# older build's vmfsmount (before/after ratios). FIO_SIZE (default 1g) sizes
# the file, FIO_RUNTIME (default 10) the seconds of each job.
set -euo pipefail
TOP=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
export VMFS_BUILD=${VMFS_BUILD:-$TOP/build}
exec python3 "$TOP/bench/fio/fio.py" "$TOP/bench/results/fio.md"
