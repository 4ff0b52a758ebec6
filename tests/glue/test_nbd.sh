#!/usr/bin/env bash
# qemu-img / qemu-io / nbdinfo through the nbdkit vmfs plugin: a raw image
# converted into a thin vdisk and back out bit-exact (holes stay holes in
# the volume), nbdcopy out sparse and bit-exact, qemu-io pattern writes/reads across 1 MiB block boundaries,
# qemu-img map shows the holes of a thin disk and nbdinfo --map agrees; a
# lazily zeroed disk maps as allocated zeroes; and, when FUSE is usable,
# qemu-img info/convert read the VMDK descriptor through vmfsmount.
. "$(dirname "$0")/lib.sh"
need_plugin
need qemu-img qemu-io nbdinfo python3

IMG=$T/lun.img
mkvol "$IMG" 4G
ok "mkdir" "$V" mkdir "$IMG" /vms
ok "create thin" "$V" vdisk create -q -d thin -s 1G "$IMG:/vms/vm1.vmdk"

# a 1 GiB raw image: random data at three places, holes elsewhere
python3 - "$T/in.raw" <<'PY'
import os, sys
with open(sys.argv[1], "wb") as f:
    f.truncate(1 << 30)
    for off, n in ((0, 3 << 20), ((100 << 20) + 123 * 512, 5 << 20), ((1 << 30) - (4 << 20), 4 << 20)):
        f.seek(off)
        f.write(os.urandom(n))
PY

nbd_start esx1 volume="$IMG" disk=/vms/vm1.vmdk host=esx1 || fail "esx1: $(cat "$T/esx1.log")"
ok "convert in" timeout 120 qemu-img convert -n -f raw -O raw "$T/in.raw" "$(uri esx1)"
ok "convert out" timeout 120 qemu-img convert -f raw -O raw "$(uri esx1)" "$T/out.raw"
ok "bit-exact round trip" cmp "$T/in.raw" "$T/out.raw"
# nbdcopy follows the extents: a sparse copy out
if command -v nbdcopy >/dev/null; then
	ok "nbdcopy out" timeout 120 nbdcopy "$(uri esx1)" "$T/copy.raw"
	ok "nbdcopy bit-exact" cmp "$T/in.raw" "$T/copy.raw"
	checks=$((checks + 1))
	[ "$(stat -c %b "$T/copy.raw")" -lt $((64 * 2048)) ] ||
		fail "nbdcopy wrote $(stat -c %b "$T/copy.raw") sectors: holes not seen"
fi

# the volume kept the holes: about 12 MiB of data blocks, not 1 GiB
"$V" vdisk info --json "$IMG:/vms/vm1.vmdk" >"$T/info.json" 2>&1
data=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"] >> 20)' "$T/info.json")
checks=$((checks + 1))
[ -n "$data" ] && [ "$data" -ge 12 ] && [ "$data" -le 16 ] ||
	fail "thin disk holds $data MiB of data blocks, expected 12..16"

# qemu-io patterns straddling 1 MiB file blocks and 512 B sectors
qio esx1 "write -P 0x5a 1048064 1024" "write -P 0xa5 3145727 2" \
	"write -P 0x3c 536870400 1048576" "write -P 0x77 1073741312 512"
qio esx1 "read -P 0x5a 1048064 1024" "read -P 0xa5 3145727 2" \
	"read -P 0x3c 536870400 1048576" "read -P 0x77 1073741312 512" \
	"read -P 0 537918976 1048576"
checks=$((checks + 1))
timeout 60 qemu-io -f raw -c "read -P 0x11 1048064 1024" "$(uri esx1)" 2>&1 |
	grep -q "Pattern verification failed" || fail "a wrong pattern was not detected"

# qemu-img map of a fresh thin disk with data at 64 MiB and 200 MiB + 512
ok "create map disk" "$V" vdisk create -q -d thin -s 256M "$IMG:/vms/map.vmdk"
nbd_start map volume="$IMG" disk=/vms/map.vmdk host=esx1b || fail "map: $(cat "$T/map.log")"
qio map "write -P 0x42 64M 1M" "write -P 0x43 209715712 4096"
timeout 60 qemu-img map -f raw --output=json "$(uri map)" >"$T/map.json" 2>&1 || fail "qemu-img map"
timeout 60 nbdinfo --map "$(uri map)" >"$T/map.txt" 2>&1 || fail "nbdinfo --map"
checks=$((checks + 1))
python3 - "$T/map.json" "$T/map.txt" <<'PY' || fail "qemu-img map / nbdinfo --map: $(cat "$T/map.json" "$T/map.txt")"
import json, sys
M = 1 << 20
def runs(items):
    out = []
    for s, l, d in items:
        if out and out[-1][2] == d and out[-1][0] + out[-1][1] == s:
            out[-1][1] += l
        else:
            out.append([s, l, d])
    return [tuple(x) for x in out]
q = runs((e["start"], e["length"], e["data"]) for e in json.load(open(sys.argv[1])))
n = []
for line in open(sys.argv[2]):
    f = line.split()
    if len(f) >= 4:
        n.append((int(f[0]), int(f[1]), "hole" not in f[3]))
n = runs(n)
want = [(0, 64 * M, False), (64 * M, M, True), (65 * M, 135 * M, False), (200 * M, M, True),
        (201 * M, 55 * M, False)]
assert q == want, ("qemu-img map", q)
assert n == want, ("nbdinfo --map", n)
PY
nbd_stop map

# a lazily zeroed disk: allocated everywhere, reads as zeroes
ok "create lazy" "$V" vdisk create -q -d zeroedthick -s 64M "$IMG:/vms/lazy.vmdk"
nbd_start lazy volume="$IMG" disk=/vms/lazy.vmdk host=esx1c || fail "lazy: $(cat "$T/lazy.log")"
timeout 60 nbdinfo --map "$(uri lazy)" >"$T/lazy.txt" 2>&1
eq "lazy disk map" "$(awk '{print $1, $2, $4}' "$T/lazy.txt")" "0 67108864 zero"
qio lazy "read -P 0 0 64M"
nbd_stop lazy
nbd_stop esx1

# the descriptor through the FUSE mount, as qemu-img sees it
if [ "$(id -u)" = 0 ] && [ -c /dev/fuse ] && command -v fusermount3 >/dev/null &&
	[ -x "$(dirname "$V")/vmfsmount" ]; then
	mkdir -p "$T/mnt"
	"$(dirname "$V")/vmfsmount" -o ro "$IMG" "$T/mnt" >"$T/fuse.log" 2>&1 && MNTS+=("$T/mnt")
	if mountpoint -q "$T/mnt"; then
		timeout 60 qemu-img info --output=json "$T/mnt/vms/vm1.vmdk" >"$T/qinfo.json" 2>&1
		eq "qemu-img info format" "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["format"], d["virtual-size"])' "$T/qinfo.json" 2>&1)" "vmdk 1073741824"
		ok "convert the vmdk through FUSE" timeout 120 qemu-img convert -O raw "$T/mnt/vms/vm1.vmdk" "$T/fuse.raw"
		qemu-io -f raw -c "write -P 0x5a 1048064 1024" -c "write -P 0xa5 3145727 2" \
			-c "write -P 0x3c 536870400 1048576" -c "write -P 0x77 1073741312 512" \
			"$T/in.raw" >/dev/null
		ok "FUSE copy equals the disk" cmp "$T/in.raw" "$T/fuse.raw"
		fusermount3 -u "$T/mnt"
	else
		fail "vmfsmount -o ro: $(cat "$T/fuse.log")"
	fi
else
	echo "note: FUSE part skipped (needs root, /dev/fuse, fusermount3, vmfsmount)"
fi
ok "fsck" "$V" fsck "$IMG"
finish
