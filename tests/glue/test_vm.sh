#!/usr/bin/env bash
# A real VM (label stress; ./run stress): QEMU under TCG boots a Debian
# kernel with an initramfs built here from busybox-static and the kernel's
# virtio modules; its disk is a thin vdisk served by the nbdkit vmfs plugin
# from host esx1. The guest writes a record to its disk, syncs, and keeps
# running; starting the VM's disk on host esx2 meanwhile fails naming esx1;
# host esx1 is killed (nbdkit and QEMU, SIGKILL); esx2 gets the disk after
# the takeover (wait=) and boots the same VM, whose guest reads the record
# back. fsck clean at the end.
. "$(dirname "$0")/lib.sh"
need_plugin
need qemu-system-x86_64 cpio gzip python3
BB=/bin/busybox
KERNEL=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)
[ -x "$BB" ] && "$BB" --list | grep -qx insmod || {
	echo "SKIP: busybox-static not installed"
	exit 77
}
[ -n "$KERNEL" ] && [ -r "$KERNEL" ] || {
	echo "SKIP: no kernel in /boot (linux-image-amd64)"
	exit 77
}
KVER=${KERNEL#/boot/vmlinuz-}
MODDIR=/lib/modules/$KVER
[ -f "$MODDIR/modules.dep" ] || {
	echo "SKIP: $MODDIR/modules.dep missing"
	exit 77
}

# initramfs: busybox, virtio modules in dependency order, /init
R=$T/root
mkdir -p "$R/bin" "$R/proc" "$R/sys" "$R/dev" "$R/mod"
cp "$BB" "$R/bin/busybox"
python3 - "$MODDIR" "$R/mod" <<'PY' || fail "collecting modules"
import os, shutil, sys
moddir, out = sys.argv[1], sys.argv[2]
dep = {}
for line in open(os.path.join(moddir, "modules.dep")):
    k, _, v = line.partition(":")
    dep[os.path.basename(k).split(".ko")[0]] = (k, v.split())
order, seen = [], set()
def add(name):
    if name in seen or name not in dep:
        return
    seen.add(name)
    for d in dep[name][1]:
        add(os.path.basename(d).split(".ko")[0])
    order.append(name)
for m in ("virtio_pci", "virtio_blk"):
    if m not in dep:
        continue  # built in
    add(m)
for i, m in enumerate(order):
    shutil.copy(os.path.join(moddir, dep[m][0]), os.path.join(out, "%02d-%s.ko" % (i, m)))
PY
cat >"$R/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /mod/*.ko; do insmod "$m"; done
for i in $(seq 100); do [ -b /dev/vda ] && break; sleep 0.1; done
case "$(cat /proc/cmdline)" in
*vmtest=write*)
	printf 'VMTEST-RECORD-%s\n' "$(cat /proc/sys/kernel/random/boot_id | cut -c1-8)" >/rec
	dd if=/rec of=/dev/vda bs=512 seek=2048 conv=sync,fsync 2>/dev/null
	sync
	echo "VMTEST-WROTE $(cat /rec)"
	while true; do sleep 1; done
	;;
*vmtest=read*)
	echo "VMTEST-READ $(dd if=/dev/vda bs=512 skip=2048 count=1 2>/dev/null | head -1)"
	poweroff -f
	;;
esac
INIT
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$T/initrd.gz")

IMG=$T/lun.img
mkvol "$IMG" 1G
ok "mkdir" "$V" mkdir "$IMG" /vms
ok "create" "$V" vdisk create -q -d thin -s 64M "$IMG:/vms/vm1.vmdk"

QPID=
# vm NAME MODE: boots the VM on the disk served by nbdkit NAME, console in
# $T/NAME.console (in the background; QPID set)
vm() {
	timeout -k 5 600 qemu-system-x86_64 -M pc -accel tcg -m 256 -nographic -no-reboot \
		-kernel "$KERNEL" -initrd "$T/initrd.gz" \
		-append "console=ttyS0 quiet panic=-1 vmtest=$2" \
		-drive "file=$(uri "$1"),format=raw,if=virtio,cache=none" \
		-serial "file:$T/$1.console" -monitor none -display none -pidfile "$T/$1.qpid" \
		</dev/null >"$T/$1.qemu" 2>&1 &
	QPID=$!
	disown "$QPID"
	for i in $(seq 100); do
		[ -s "$T/$1.qpid" ] && break
		sleep 0.1
	done
	[ -s "$T/$1.qpid" ] && EXTRA_PIDS+=("$(cat "$T/$1.qpid")")
}
vm_kill() { # the QEMU started last (its own PID, not timeout's)
	local q
	q=$(cat "$T/$1.qpid" 2>/dev/null)
	[ -n "$q" ] && kill -KILL "$q" 2>/dev/null
}
wait_console() { # wait_console NAME PATTERN SECONDS
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -q "$2" "$T/$1.console" 2>/dev/null && return 0
		kill -0 "$QPID" 2>/dev/null || break
		sleep 0.1
	done
	grep -q "$2" "$T/$1.console" 2>/dev/null
}

nbd_start esx1 volume="$IMG" disk=/vms/vm1.vmdk host=esx1 || fail "esx1: $(cat "$T/esx1.log")"
t0=$(date +%s)
vm esx1 write
checks=$((checks + 1))
if wait_console esx1 VMTEST-WROTE 400; then
	rec=$(grep -o 'VMTEST-RECORD-[0-9a-f]*' "$T/esx1.console" | head -1)
	echo "guest on esx1 booted and wrote $rec in $(($(date +%s) - t0)) s"
else
	fail "the VM on esx1 did not write its record: $(tail -5 "$T/esx1.console" "$T/esx1.qemu")"
fi

# the same VM on esx2 while esx1 runs it: refused, holder named
nbd_start esx2 volume="$IMG" disk=/vms/vm1.vmdk host=esx2 && fail "esx2 served a running VM's disk"
checks=$((checks + 1))
grep -q "vm1.vmdk is locked by host esx1" "$T/esx2.log" || fail "esx2: $(cat "$T/esx2.log")"

# host esx1 dies: its nbdkit and its QEMU
nbd_kill esx1
vm_kill esx1
t0=$(date +%s%N)
nbd_start esx2 volume="$IMG" disk=/vms/vm1.vmdk host=esx2 wait=120 || fail "esx2 after the takeover: $(cat "$T/esx2.log")"
echo "esx2 got the disk $((($(date +%s%N) - t0) / 1000000)) ms after esx1 was killed"
vm esx2 read
checks=$((checks + 1))
if wait_console esx2 "VMTEST-READ" 400; then
	got=$(grep -o 'VMTEST-READ .*' "$T/esx2.console" | head -1 | tr -d '\r')
	echo "guest on esx2: $got"
	[ -n "${rec:-}" ] && [ "$got" = "VMTEST-READ $rec" ] || fail "esx2's guest read '$got', expected '$rec'"
else
	fail "the VM on esx2 did not read: $(tail -5 "$T/esx2.console" "$T/esx2.qemu")"
fi
for i in $(seq 100); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.1; done
vm_kill esx2
nbd_stop esx2
ok "fsck" "$V" fsck "$IMG"
finish
