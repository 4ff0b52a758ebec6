#!/usr/bin/env bash
# bench/scale: scaling curves, each with its peer in the same run (see
# bench/scale/scale.py for the curves, the defaults and the SCALE_* variables
# for bigger or smaller runs). Writes bench/results/scale.md, scale.json and
# scale-*.png. scale.py stops, by PID, every process it started and unmounts
# its mounts and detaches its loop devices itself, also on SIGTERM/SIGINT
# (exec: the signal goes straight to it). SCALE_TIMEOUT (default 5400 s)
# bounds the whole run: timeout(1) then sends SIGTERM, and scale.py cleans up.
set -euo pipefail
TOP=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
export VMFS_BUILD=${VMFS_BUILD:-$TOP/build}
exec timeout -s TERM "${SCALE_TIMEOUT:-5400}" /usr/bin/python3 "$TOP/bench/scale/scale.py" "$TOP/bench/results"
