#!/usr/bin/env bash
# The demo run by `./run demo`: formats a sparse 8 GiB image, shows its
# layout, checks it, then lets three simulated hosts (processes) contend for
# one on-disk lock: one holds it, one is refused, and when the holder dies
# (SIGKILL) `hosts` shows it dead, the third takes it over after the
# heartbeat timeout, and `hosts` / `locks` show who recovered the dead host
# (and how many journal transactions were replayed) and the lock now held
# by the survivor. Then three
# hosts mount the volume with FUSE (vmfsmount), share a file, and one holds
# a VM disk open for writing: the others get "Device or resource busy".
# Usage: tests/demo.sh [IMAGE]   (default build/demo/demo.img)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
VMFSCTL=${VMFSCTL:-$TOP/build/fuse-tools/vmfsctl}
IMG=${1:-$TOP/build/demo/demo.img}
mkdir -p "$(dirname "$IMG")"

pgids=()
mnts=()
mpids=()
cleanup() {
    local g m
    for g in "${pgids[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
    for m in "${mnts[@]}"; do
        grep -q " $m fuse" /proc/mounts && { fusermount3 -u "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null || true; }
    done
    for g in "${mpids[@]}"; do
        for _ in $(seq 50); do kill -0 "$g" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$g" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# show CMD ARGS...: prints the command as it could be typed (an argument
# with spaces or shell characters in single quotes), then runs it.
show() {
	local a line=
	for a in "$@"; do
		case $a in
		*[[:space:]\<\>\|\&\;\$\'\"\(\)\*\?]*) line+=" '${a//\'/\'\\\'\'}'" ;;
		*) line+=" $a" ;;
		esac
	done
	printf '$%s\n' "$line"
	"$@"
}

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

step "8. esx1 dies (SIGKILL): its slot stays live on disk, but its heartbeat stops"
kill -KILL -- "-$holder"
# hosts watches while a live slot is silent, up to the timeout: esx1 is dead
show "$VMFSCTL" hosts "$IMG"

step "9. esx3 takes over esx1's slot (recovery record written), then the lock, and runs vm1"
log=$(dirname "$IMG")/demo-esx3.log
start=$(date +%s.%N)
setsid "$VMFSCTL" lock --host esx3 -w 30 "$IMG" vm1-disk -- sh -c 'echo "esx3: running vm1"; exec sleep 600' >"$log" 2>&1 &
survivor=$!
disown "$survivor"
pgids+=("$survivor")
printf '$ vmfsctl lock --host esx3 -w 30 %s vm1-disk -- sh -c ... &\n' "$IMG"
for _ in $(seq 300); do grep -q running "$log" && break; sleep 0.1; done
cat "$log"
end=$(date +%s.%N)
python3 -c "print('esx3 got the lock %.1f s after it asked (it watches esx1 silent for the timeout first)' % ($end - $start))"

step "10. What the disk says now: esx1's slot recovered by esx3 (and what was replayed), vm1's lock held by esx3"
show "$VMFSCTL" hosts "$IMG"
show "$VMFSCTL" locks "$IMG"
kill -TERM -- "-$survivor" # vm1 stops on esx3: the lock is released
for _ in $(seq 50); do kill -0 "$survivor" 2>/dev/null || break; sleep 0.1; done

step "11. fsck after the takeover"
show "$VMFSCTL" fsck "$IMG"

VMFSMOUNT=${VMFSMOUNT:-$(dirname "$VMFSCTL")/vmfsmount}
if [ ! -x "$VMFSMOUNT" ] || ! command -v fusermount3 >/dev/null ||
    ! { exec 9<>/dev/fuse; } 2>/dev/null; then
    echo "(no usable /dev/fuse, fusermount3 or vmfsmount: the FUSE part is skipped)"
    exit 0
fi
exec 9>&-

mounted() { grep -q " $1 fuse" /proc/mounts; }

step "12. Three hosts mount the volume with FUSE, each its own heartbeat slot"
for h in 1 2 3; do
    m=$(dirname "$IMG")/mnt-esx$h
    mkdir -p "$m"
    mounted "$m" && fusermount3 -u "$m"
    printf '$ %s\n' "vmfsmount -f -o host=esx$h $IMG $m &"
    "$VMFSMOUNT" -f -o "host=esx$h" "$IMG" "$m" &
    mpids+=("$!")
    mnts+=("$m")
    for _ in $(seq 100); do mounted "$m" && break; sleep 0.1; done
    mounted "$m" || { echo "esx$h: the mount did not come up"; exit 1; }
done
M1=${mnts[0]} M2=${mnts[1]} M3=${mnts[2]}
show findmnt -o TARGET,SOURCE,FSTYPE,OPTIONS "$M1"
findmnt -n -o TARGET,SOURCE,FSTYPE,OPTIONS "$M2"
findmnt -n -o TARGET,SOURCE,FSTYPE,OPTIONS "$M3"

step "13. esx1 writes a file, esx2 and esx3 read it (same md5 everywhere)"
printf '$ head -c 3000000 /dev/urandom > %s\n' "$M1/iso.img"
head -c 3000000 /dev/urandom >"$M1/iso.img"
show md5sum "$M1/iso.img" "$M2/iso.img" "$M3/iso.img"
show ls -l "$M2" "$M3"

step "14. esx1 runs vm2: its disk is held open for writing on mount 1"
log=$(dirname "$IMG")/demo-vm2.log
setsid sh -c 'exec 3>"$1"; echo "esx1: running vm2 (disk open for writing)"; exec sleep 600' sh "$M1/vm2.vmdk" >"$log" 2>&1 &
vm2=$!
disown "$vm2"
pgids+=("$vm2")
for _ in $(seq 50); do grep -q running "$log" && break; sleep 0.1; done
cat "$log"
show "$VMFSCTL" hosts "$IMG"
show "$VMFSCTL" locks "$IMG"

step "15. esx2 tries to open vm2's disk for writing: refused while esx1 holds it"
show sh -c "exec 3>$M2/vm2.vmdk" || echo "(esx2 was refused, as it must be)"
show ls -l "$M2/vm2.vmdk"

step "16. vm2 stops on esx1 (its disk is closed): now esx2 can open it"
kill -TERM -- "-$vm2"
for _ in $(seq 50); do sh -c "exec 3>>$M2/vm2.vmdk" 2>/dev/null && break; sleep 0.1; done
printf '$ echo "esx2: running vm2" >> %s; cat %s\n' "$M2/vm2.vmdk" "$M3/vm2.vmdk"
echo "esx2: running vm2" >>"$M2/vm2.vmdk"
cat "$M3/vm2.vmdk"

step "17. Unmount all three (each host leaves its heartbeat slot), then fsck"
for m in "${mnts[@]}"; do show fusermount3 -u "$m"; done
for g in "${mpids[@]}"; do wait "$g"; done
mpids=()
show "$VMFSCTL" hosts "$IMG"
show "$VMFSCTL" fsck "$IMG"
