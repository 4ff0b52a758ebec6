#!/usr/bin/env bash
# Discard through NBD: a guest-visible trim of 1 GiB of a thin vdisk (the
# export's TRIM, sent by qemu-io's discard) frees exactly 1 GiB of file
# blocks in `vmfsctl df` and the volume's image file loses at least 1 GiB
# of allocated space (st_blocks), the range reads back as zeroes and maps
# as a hole; data outside the range is kept. A thick disk keeps its blocks.
. "$(dirname "$0")/lib.sh"
need_plugin
need qemu-io nbdinfo python3 stat

IMG=$T/lun.img
mkvol "$IMG" 4G
ok "create" "$V" vdisk create -q -d thin -s 2G "$IMG:/vm1.vmdk"
nbd_start esx1 volume="$IMG" disk=/vm1.vmdk host=esx1 || fail "esx1: $(cat "$T/esx1.log")"
qio esx1 "write -P 0x33 0 1G" "write -P 0x44 1G 64M" "flush"

free_blocks() { "$V" df --json "$IMG" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["blocks_free"])'; }
f0=$(free_blocks)
a0=$(stat -c %b "$IMG")
t0=$(date +%s%N)
qio esx1 "discard 0 1G" "flush"
ms=$((($(date +%s%N) - t0) / 1000000))
f1=$(free_blocks)
a1=$(stat -c %b "$IMG")
echo "trim of 1 GiB: $ms ms; free blocks $f0 -> $f1; image allocated $((a0 / 2048)) -> $((a1 / 2048)) MiB"
eq "file blocks freed by the trim" "$((f1 - f0))" 1024
checks=$((checks + 1))
[ $(((a0 - a1) * 512)) -ge $((1 << 30)) ] || fail "image allocation dropped only $(((a0 - a1) * 512)) bytes"
qio esx1 "read -P 0 0 1G" "read -P 0x44 1G 64M"
timeout 60 nbdinfo --map "$(uri esx1)" >"$T/map.txt" 2>&1
eq "map after trim" "$(head -1 "$T/map.txt" | awk '{print $1, $2, $4}')" "0 1073741824 hole,zero"

# a zeroedthick disk keeps its reservation: the trim frees nothing
ok "create thick" "$V" vdisk create -q -d zeroedthick -s 256M "$IMG:/thick.vmdk"
nbd_start thick volume="$IMG" disk=/thick.vmdk host=esx1b || fail "thick: $(cat "$T/thick.log")"
qio thick "write -P 0x55 0 256M" "flush"
f2=$(free_blocks)
qio thick "discard 0 256M" "flush"
eq "thick disk blocks after trim" "$(free_blocks)" "$f2"
nbd_stop thick
nbd_stop esx1
ok "fsck" "$V" fsck "$IMG"
finish
