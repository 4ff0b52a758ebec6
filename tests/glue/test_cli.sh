#!/usr/bin/env bash
# vmfsctl vdisk, every subcommand: create (three formats, three adapters,
# both DEVICE:/PATH and DEVICE /PATH), the descriptor text vmkfstools-like,
# info (text, -D, --json), extend (size, descriptor, geometry), inflate
# (thin -> eagerzeroedthick, data kept), clone (holes kept, from a raw file,
# from a real VMFS6 datastore), rm; bad input with one clear error line and
# exit 2 (usage) or 1 (failure); progress on a terminal; fsck clean.
. "$(dirname "$0")/lib.sh"
need python3

IMG=$T/lun.img
mkvol "$IMG" 4G
ok "mkdir" "$V" mkdir "$IMG" /vms

# run EXPECTED_RC ARGS...: vmfsctl with stdout/stderr in $T/out, $T/err
run() {
	local want=$1 rc
	shift
	checks=$((checks + 1))
	timeout 120 "$V" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	[ "$rc" = "$want" ] || fail "vmfsctl $* exited $rc, expected $want: $(head -c 400 "$T/err")"
}
# err PATTERN: the last stderr is exactly one line matching PATTERN
err() {
	checks=$((checks + 1))
	[ "$(wc -l <"$T/err")" = 1 ] && grep -q -- "$1" "$T/err" ||
		fail "expected one error line matching '$1', got: $(cat "$T/err")"
}
# js FILE EXPR: a python expression over the JSON document d of FILE
js() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

run 0 vdisk --help
checks=$((checks + 1))
grep -q "create -s SIZE" "$T/out" || fail "vdisk --help"
run 0 vdisk create -q -d thin -a lsilogic -s 1G "$IMG:/vms/thin.vmdk"
run 0 vdisk create -q -d zeroedthick -a pvscsi -s 64M "$IMG" /vms/lazy.vmdk
run 0 vdisk create -q -d eagerzeroedthick -a ide -s 32M "$IMG:/vms/eager.vmdk"
run 0 vdisk create -q -s 8M "$IMG:/vms/raw.img"

"$V" cat "$IMG" /vms/thin.vmdk >"$T/desc"
for pat in '^# Disk DescriptorFile' '^createType="vmfs"' '^RW 2097152 VMFS "thin-flat.vmdk"' \
	'^ddb.adapterType = "lsilogic"' '^ddb.geometry.cylinders = "130"' \
	'^ddb.geometry.heads = "255"' '^ddb.geometry.sectors = "63"' '^ddb.thinProvisioned = "1"'; do
	checks=$((checks + 1))
	grep -q "$pat" "$T/desc" || fail "descriptor lacks $pat: $(cat "$T/desc")"
done
eq "flat file size" "$("$V" stat --json "$IMG" /vms/thin-flat.vmdk | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])')" 1073741824

for d in thin:thin:lsilogic:1073741824 lazy:zeroedthick:pvscsi:67108864 \
	eager:eagerzeroedthick:ide:33554432 raw.img:thin:lsilogic:8388608; do
	IFS=: read -r name prov ad size <<<"$d"
	p=/vms/$name
	[ "$name" = raw.img ] || p=/vms/$name.vmdk
	run 0 vdisk info --json "$IMG:$p"
	cp "$T/out" "$T/i.json"
	eq "$name provisioning" "$(js "$T/i.json" 'd["provisioning"]')" "$prov"
	eq "$name adapter" "$(js "$T/i.json" 'd["adapter"]')" "$ad"
	eq "$name size" "$(js "$T/i.json" 'd["size"]')" "$size"
done
run 0 vdisk info --json "$IMG:/vms/eager.vmdk"
eq "ide geometry" "$(js "$T/out" 'd["geometry"]["heads"], d["geometry"]["cylinders"]')" "16 65"
eq "eager data" "$(js "$T/out" 'd["data"], d["tbz"], d["holes"]')" "33554432 0 0"
run 0 vdisk info --json "$IMG:/vms/lazy-flat.vmdk"
eq "lazy extents" "$(js "$T/out" 'd["data"], d["tbz"], d["holes"]')" "0 67108864 0"
run 0 vdisk info -D "$IMG:/vms/thin.vmdk"
checks=$((checks + 1))
grep -q "^Format: *thin" "$T/out" && grep -q "^Lock: *free" "$T/out" && grep -q "^Lock record:" "$T/out" ||
	fail "info -D: $(cat "$T/out")"

# extend: flat file, descriptor sectors and geometry follow
run 0 vdisk extend -X 2G "$IMG:/vms/thin.vmdk"
"$V" cat "$IMG" /vms/thin.vmdk >"$T/desc"
checks=$((checks + 1))
grep -q '^RW 4194304 VMFS "thin-flat.vmdk"' "$T/desc" && grep -q 'cylinders = "261"' "$T/desc" ||
	fail "extended descriptor: $(cat "$T/desc")"
run 0 vdisk info --json "$IMG:/vms/thin.vmdk"
eq "extended size" "$(js "$T/out" 'd["size"], d["flat_size"]')" "2147483648 2147483648"
run 1 vdisk extend -X 1G "$IMG:/vms/thin.vmdk"
err "must be larger"
run 0 vdisk extend -X 128M "$IMG:/vms/lazy.vmdk"
run 0 vdisk info --json "$IMG:/vms/lazy.vmdk"
eq "extended lazy disk" "$(js "$T/out" 'd["tbz"], d["provisioning"]')" "134217728 zeroedthick"

# clone: a raw file with holes, into thin (holes kept) and eager
python3 - "$T/src.raw" <<'PY'
import os, sys
with open(sys.argv[1], "wb") as f:
    f.truncate(64 << 20)
    f.seek(5 << 20); f.write(os.urandom(3 << 20))
    f.seek((40 << 20) + 4096); f.write(os.urandom(1 << 20))
PY
run 0 cp "$T/src.raw" "$IMG:/vms/src.img"
run 0 vdisk clone -q -i "$IMG:/vms/src.img" -d thin "$IMG:/vms/c1.vmdk"
run 0 vdisk info --json "$IMG:/vms/c1.vmdk"
eq "clone keeps holes" "$(js "$T/out" 'd["data"] >> 20, d["provisioning"]')" "5 thin"
"$V" cat "$IMG" /vms/c1-flat.vmdk >"$T/c1.raw"
ok "clone content" cmp "$T/src.raw" "$T/c1.raw"
run 0 vdisk clone -q -i /vms/c1.vmdk -d eagerzeroedthick -a pvscsi "$IMG:/vms/c2.vmdk"
run 0 vdisk info --json "$IMG:/vms/c2.vmdk"
eq "eager clone" "$(js "$T/out" 'd["data"], d["adapter"]')" "67108864 pvscsi"
"$V" cat "$IMG" /vms/c2-flat.vmdk >"$T/c2.raw"
ok "eager clone content" cmp "$T/src.raw" "$T/c2.raw"
run 1 vdisk clone -q -i "$IMG:/vms/nothere.vmdk" "$IMG:/vms/c3.vmdk"
err "nothere.vmdk"
run 1 vdisk clone -q -i "$IMG:/vms/c1.vmdk" "$IMG:/vms/c2.vmdk"
err "exists"

# clone from a real VMFS6 datastore (if the test images are there)
if [ -f "${VMFS_SHARED:-}/data/vmfs6.bin.gz" ]; then
	gzip -dc "$VMFS_SHARED/data/vmfs6.bin.gz" >"$T/vmfs6.img"
	run 0 vdisk clone -q -i "$T/vmfs6.img:/directory/file5" "$IMG:/vms/real.vmdk"
	"$V" cp "$T/vmfs6.img:/directory/file5" "$T/file5"
	"$V" cat "$IMG" /vms/real-flat.vmdk | head -c "$(stat -c %s "$T/file5")" >"$T/real.raw"
	ok "clone from VMFS6" cmp "$T/file5" "$T/real.raw"
	run 1 vdisk create -s 1M "$T/vmfs6.img:/x.vmdk"
	err "read-only"
else
	echo "note: real VMFS6 image not found, clone-from-VMFS part skipped"
fi

# inflate: thin -> eagerzeroedthick, data kept, descriptor no longer thin
run 0 vdisk inflate -q "$IMG:/vms/c1.vmdk"
run 0 vdisk info --json "$IMG:/vms/c1.vmdk"
eq "inflated" "$(js "$T/out" 'd["provisioning"], d["data"], d["tbz"], d["holes"]')" "eagerzeroedthick 67108864 0 0"
"$V" cat "$IMG" /vms/c1-flat.vmdk >"$T/c1.raw"
ok "inflated content" cmp "$T/src.raw" "$T/c1.raw"
checks=$((checks + 1))
"$V" cat "$IMG" /vms/c1.vmdk | grep -q thinProvisioned && fail "inflated descriptor still thin"

# progress on a terminal (a pty from script(1))
if command -v script >/dev/null; then
	VMFS_PROGRESS_MS=0 script -qec "$V vdisk create -d eagerzeroedthick -s 600M $IMG:/vms/p.vmdk" /dev/null >"$T/pty" 2>&1
	checks=$((checks + 1))
	grep -q "zeroing: 600.0 MiB of 600.0 MiB (100%)" "$T/pty" || fail "no progress on a terminal: $(cat "$T/pty")"
fi

# --json of a change, rm
run 0 vdisk rm --json "$IMG:/vms/p.vmdk"
eq "rm json" "$(js "$T/out" 'd["ok"], d["command"]')" "True vdisk rm"
run 0 vdisk rm "$IMG:/vms/c2.vmdk"
run 1 stat "$IMG" /vms/c2-flat.vmdk
run 1 stat "$IMG" /vms/c2.vmdk
run 0 vdisk rm "$IMG" /vms/raw.img

# bad input: one line each
run 2 vdisk
err "expected a subcommand"
run 2 vdisk frobnicate "$IMG:/vms/x.vmdk"
err "unknown subcommand"
run 2 vdisk create -s 1000 "$IMG:/vms/x.vmdk"
err "multiple of 512"
run 2 vdisk create -s 0 "$IMG:/vms/x.vmdk"
err "bad size"
run 2 vdisk create -s 1G -d thick "$IMG:/vms/x.vmdk"
err "bad disk format"
run 2 vdisk create -s 1G -a scsi "$IMG:/vms/x.vmdk"
err "bad adapter"
run 2 vdisk create "$IMG:/vms/x.vmdk"
err "missing -s"
run 2 vdisk create -s 1G "$IMG"
err "expected DEVICE:/PATH"
run 2 vdisk extend "$IMG:/vms/thin.vmdk"
err "missing -X"
run 2 vdisk clone "$IMG:/vms/x.vmdk"
err "missing -i"
run 2 vdisk info --bogus "$IMG:/vms/thin.vmdk"
err "unknown option"
run 1 vdisk create -s 1G "$IMG:/vms/thin.vmdk"
err "exists"
run 1 vdisk create -s 1G "$IMG:/nodir/x.vmdk"
err "No such file"
run 1 vdisk create -s 100T "$IMG:/vms/huge.vmdk"
err "bad size"
run 1 vdisk info "$IMG:/vms/none.vmdk"
err "No such file"
run 1 vdisk rm "$IMG:/vms/none.vmdk"
err "No such file"
run 1 vdisk info "$T/nothere.img:/vms/thin.vmdk"
err "nothere.img"
# a hostile descriptor: refused with the reason, never followed out of its directory
printf '# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="vmfs"\nRW 100 VMFS "../etc/x"\n' >"$T/evil"
run 0 cp "$T/evil" "$IMG:/vms/evil.vmdk"
run 1 vdisk info "$IMG:/vms/evil.vmdk"
err "one plain name"
run 1 vdisk inflate "$IMG:/vms/evil.vmdk"
err "bad descriptor"
printf '# Disk DescriptorFile\nversion=1\nparentCID=0000abcd\ncreateType="vmfsSparse"\n' >"$T/snap"
run 0 cp "$T/snap" "$IMG:/vms/snap.vmdk"
run 1 vdisk info "$IMG:/vms/snap.vmdk"
err "snapshot"

ok "fsck" "$V" fsck "$IMG"
finish
