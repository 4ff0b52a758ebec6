#!/usr/bin/env bash
# The demo run by `./run demo`: formats a sparse 8 GiB image, shows its
# layout, checks it, then lets three simulated hosts (processes) contend for
# one on-disk lock: one holds it, one is refused, and when the holder dies
# (SIGKILL) the third takes it over after the heartbeat timeout.
# Usage: tests/demo.sh [IMAGE]   (default build/demo/demo.img)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
VMFSCTL=${VMFSCTL:-$TOP/build/fuse-tools/vmfsctl}
IMG=${1:-$TOP/build/demo/demo.img}
mkdir -p "$(dirname "$IMG")"

pgids=()
cleanup() {
    local g
    for g in "${pgids[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "1. A sparse 8 GiB image stands in for a shared SAN LUN"
rm -f "$IMG"
show truncate -s 8G "$IMG"

step "2. Format it (interval 1 s, a host is dead after 4 s without a heartbeat)"
show "$VMFSCTL" mkfs -L demo --hb-timeout 4000 "$IMG"

step "3. Its layout: volume header, regions, heartbeat slots"
show "$VMFSCTL" info "$IMG"

step "4. fsck: a fresh volume is clean"
show "$VMFSCTL" fsck "$IMG"

if ! "$VMFSCTL" lock --help >/dev/null 2>&1; then
    echo "(this build has no lock manager commands: the multi-host part is skipped)"
    exit 0
fi

step "5. Three hosts share the volume: esx1 takes the lock of vm1's disk"
log=$(dirname "$IMG")/demo-esx1.log
# setsid: the "VM" runs in a process group of its own, so the whole host
# (lock holder and VM) can be killed at once, as when a machine dies.
setsid "$VMFSCTL" lock --host esx1 "$IMG" vm1-disk -- sh -c 'echo "esx1: running vm1"; exec sleep 600' >"$log" 2>&1 &
holder=$!
disown "$holder" # the demo reports the death itself
pgids+=("$holder")
for _ in $(seq 50); do grep -q running "$log" && break; sleep 0.1; done
cat "$log"

step "6. esx2 tries to boot the same VM: refused while esx1 is alive"
show "$VMFSCTL" lock --host esx2 -w 0 "$IMG" vm1-disk -- echo "esx2: running vm1" || echo "(esx2 was refused, as it must be)"

step "7. What the disk says: live hosts and held locks"
show "$VMFSCTL" hosts "$IMG"
show "$VMFSCTL" locks "$IMG"

step "8. esx1 dies (SIGKILL): esx3 waits for its heartbeat to stop, takes over its slot, then the lock"
kill -KILL -- "-$holder"
start=$(date +%s.%N)
show "$VMFSCTL" lock --host esx3 -w 30 "$IMG" vm1-disk -- echo "esx3: running vm1"
end=$(date +%s.%N)
python3 -c "print('esx3 got the lock %.1f s after esx1 died' % ($end - $start))"

step "9. fsck after the takeover"
show "$VMFSCTL" fsck "$IMG"
