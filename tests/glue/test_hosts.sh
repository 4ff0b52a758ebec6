#!/usr/bin/env bash
# Two (and three) hosts serving one disk through the nbdkit vmfs plugin:
# an exclusive disk is refused on a second host at once with the holder
# named (nbdkit exits non-zero, "vm1.vmdk is locked by host esx1"), and
# vmfsctl vdisk info -D names the holder; read-only shared opens on two
# hosts read the same data while a writer is refused naming both; after
# host esx1 is killed (SIGKILL), esx2 with wait= gets the disk after the
# takeover and reads what esx1 had flushed.
. "$(dirname "$0")/lib.sh"
need_plugin
need qemu-io nbdinfo

IMG=$T/lun.img
mkvol "$IMG" 2G
ok "create" "$V" vdisk create -q -d zeroedthick -s 64M "$IMG:/vm1.vmdk"

nbd_start esx1 volume="$IMG" disk=/vm1.vmdk host=esx1 || fail "esx1: $(cat "$T/esx1.log")"
qio esx1 "write -P 0x61 0 1M" "write -P 0x62 33553920 1024" "flush"

# second host, exclusive: refused at once, holder named
t0=$(date +%s%N)
if nbd_start esx2 volume="$IMG" disk=/vm1.vmdk host=esx2; then
	fail "esx2 served a disk esx1 holds exclusively"
	nbd_stop esx2
fi
ms=$((($(date +%s%N) - t0) / 1000000))
checks=$((checks + 1))
grep -q "vm1.vmdk is locked by host esx1" "$T/esx2.log" || fail "esx2 error: $(cat "$T/esx2.log")"
checks=$((checks + 1))
[ "$ms" -lt 10000 ] || fail "the refusal took $ms ms"
echo "refused in $ms ms: $(grep -o 'vm1.vmdk is locked.*' "$T/esx2.log")"
# also in shared and multi-writer mode
nbd_start esx2 volume="$IMG" disk=/vm1.vmdk host=esx2 mode=shared && fail "shared open next to exclusive"
grep -q "locked by host esx1 (exclusive)" "$T/esx2.log" || fail "esx2 shared error: $(cat "$T/esx2.log")"
"$V" vdisk info -D "$IMG:/vm1.vmdk" >"$T/info" 2>&1
checks=$((checks + 1))
grep -q "Lock: *exclusive, held by esx1" "$T/info" && grep -q "holder 0: *host esx1" "$T/info" ||
	fail "vdisk info -D: $(cat "$T/info")"
nbd_stop esx1

# read-only shared on two hosts
nbd_start esx1 volume="$IMG" disk=/vm1.vmdk host=esx1 mode=shared || fail "esx1 shared: $(cat "$T/esx1.log")"
nbd_start esx2 volume="$IMG" disk=/vm1.vmdk host=esx2 mode=shared || fail "esx2 shared: $(cat "$T/esx2.log")"
for h in esx1 esx2; do
	eq "$h read-only" "$(nbdinfo --is read-only "$(uri $h)" && echo yes)" "yes"
	qio $h -r "read -P 0x61 0 1M" "read -P 0x62 33553920 1024" "read -P 0 1M 1M"
done
nbd_start esx3 volume="$IMG" disk=/vm1.vmdk host=esx3 && fail "esx3 exclusive next to readers"
checks=$((checks + 1))
grep -q "vm1.vmdk is locked by hosts esx[12], esx[12] (read-only shared)" "$T/esx3.log" ||
	fail "esx3 error: $(cat "$T/esx3.log")"
"$V" vdisk info --json "$IMG:/vm1.vmdk" >"$T/info.json"
checks=$((checks + 1))
grep -q '"mode": "read-only shared"' "$T/info.json" || fail "info json: $(cat "$T/info.json")"
nbd_stop esx1
nbd_stop esx2

# takeover: esx1 dies holding the disk; esx2 waits and gets it
nbd_start esx1 volume="$IMG" disk=/vm1.vmdk host=esx1 || fail "esx1 again: $(cat "$T/esx1.log")"
qio esx1 "write -P 0x63 4M 1M" "flush"
nbd_kill esx1
t0=$(date +%s%N)
nbd_start esx2 volume="$IMG" disk=/vm1.vmdk host=esx2 wait=60 || fail "esx2 after takeover: $(cat "$T/esx2.log")"
ms=$((($(date +%s%N) - t0) / 1000000))
echo "esx2 served the disk $ms ms after esx1 was killed (heartbeat timeout 2000 ms)"
qio esx2 "read -P 0x63 4M 1M" "read -P 0x61 0 1M" "write -P 0x64 5M 4096"
nbd_stop esx2
ok "fsck" "$V" fsck "$IMG"
finish
