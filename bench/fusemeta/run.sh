#!/usr/bin/env bash
# bench/fusemeta: create/stat/ls -l/unlink of FUSEMETA_N files (default 1000)
# through vmfsmount, fuse2fs and kernel ext4 on a loop device, in one run;
# VMFS_OLD_BUILD=DIR adds an older build's vmfsmount (before/after ratios).
set -euo pipefail
TOP=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
export VMFS_BUILD=${VMFS_BUILD:-$TOP/build}
exec python3 "$TOP/bench/fusemeta/fusemeta.py" "$TOP/bench/results/fusemeta.md"
