#!/usr/bin/env bash
# Multi-writer disks through the nbdkit vmfs plugin: two hosts serve one
# eagerly zeroed disk in mode=multiwriter and write disjoint 512-byte
# sectors of the same 4 KiB units concurrently (esx1 the even sectors, esx2
# the odd ones, several passes); afterwards both hosts read every sector
# intact. An exclusive open is refused meanwhile naming both hosts.
# Before libvmfs wrote only the sectors a multi-writer write covers (it
# rewrote whole 4 KiB units), this lost updates on every run.
. "$(dirname "$0")/lib.sh"
need_plugin
need qemu-io

IMG=$T/lun.img
UNITS=${MW_UNITS:-2}
mkvol "$IMG" 2G
ok "create" "$V" vdisk create -q -d eagerzeroedthick -s 16M "$IMG:/shared.vmdk"
nbd_start esx1 volume="$IMG" disk=/shared.vmdk host=esx1 mode=multiwriter || fail "esx1: $(cat "$T/esx1.log")"
nbd_start esx2 volume="$IMG" disk=/shared.vmdk host=esx2 mode=multiwriter || fail "esx2: $(cat "$T/esx2.log")"
nbd_start esx3 volume="$IMG" disk=/shared.vmdk host=esx3 && fail "exclusive open next to multi-writers"
checks=$((checks + 1))
grep -q "locked by hosts esx[12], esx[12] (multi-writer)" "$T/esx3.log" || fail "esx3: $(cat "$T/esx3.log")"

# writer HOST FIRST-SECTOR: one qemu-io writing sectors FIRST, FIRST+2, ...
# of units 0..UNITS-1, ROUNDS times, round r with pattern BASE + r % 100 (so a write
# lost to the other host's read-modify-write of the unit shows as an older
# pattern or zeroes)
ROUNDS=${MW_ROUNDS:-300}
writer() {
	local cmds=() u s r
	for ((r = 1; r <= ROUNDS; r++)); do
		for ((u = 0; u < UNITS; u++)); do
			for ((s = $2; s < 8; s += 2)); do
				cmds+=(-c "write -P $(($3 + r % 100)) $((u * 4096 + s * 512)) 512")
			done
		done
	done
	timeout 240 qemu-io -f raw "${cmds[@]}" "$(uri "$1")" >"$T/w-$1.out" 2>&1
}
writer esx1 0 0 &
w1=$!
writer esx2 1 128 &
w2=$!
wait $w1 || fail "esx1 writer: $(tail -3 "$T/w-esx1.out")"
wait $w2 || fail "esx2 writer: $(tail -3 "$T/w-esx2.out")"
qio esx1 flush
qio esx2 flush

for h in esx1 esx2; do
	cmds=()
	for ((u = 0; u < UNITS; u++)); do
		for ((s = 0; s < 8; s++)); do
			cmds+=("read -P $((s % 2 ? 128 + ROUNDS % 100 : ROUNDS % 100)) $((u * 4096 + s * 512)) 512")
		done
	done
	qio $h -r "${cmds[@]}" || break
done
nbd_stop esx1
nbd_stop esx2
ok "fsck" "$V" fsck "$IMG"
finish
