#!/usr/bin/env bash
# bench/glue/run.sh: fio (nbd engine) against the nbdkit vmfs plugin serving
# an eagerly zeroed vdisk, side by side in the same run with nbdkit's file
# plugin on a raw file of the same size (both pre-written: reads of holes do
# no I/O). 4 KiB random read/write at QD1 and QD32, 1 MiB sequential
# read/write at QD8; the volume with O_DIRECT (default) and through the
# page cache (?direct=0, as the file plugin works). Prints a table and writes bench/results/glue.md.
# GLUE_BENCH_SIZE (default 2G) and GLUE_BENCH_RUNTIME (s, default 10).
set -euo pipefail
TOP=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
B=${VMFS_BUILD:-$TOP/build}
V=$B/fuse-tools/vmfsctl
PLUGIN=$B/hypervisor-glue/nbdkit-vmfs-plugin.so
SIZE=${GLUE_BENCH_SIZE:-2G}
RT=${GLUE_BENCH_RUNTIME:-10}
for t in fio nbdkit; do command -v $t >/dev/null || { echo "bench glue: $t missing" >&2; exit 1; }; done
[ -f "$PLUGIN" ] || { echo "bench glue: $PLUGIN not built" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/glue-bench.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 0.5
	rm -rf "$T"
}
trap cleanup EXIT

truncate -s 8G "$T/lun.img"
"$V" mkfs -q "$T/lun.img" >/dev/null
"$V" vdisk create -q -d eagerzeroedthick -s "$SIZE" "$T/lun.img:/bench.vmdk" >/dev/null
truncate -s "$SIZE" "$T/raw.img"

start() { # start NAME ARGS...
	local n=$1
	shift
	nbdkit -f -P "$T/$n.pid" -U "$T/$n.sock" "$@" >"$T/$n.log" 2>&1 &
	for _ in $(seq 300); do
		[ -s "$T/$n.pid" ] && [ -S "$T/$n.sock" ] && break
		sleep 0.1
	done
	pids+=("$(cat "$T/$n.pid")")
}
start file file "$T/raw.img"
start vmfs "$PLUGIN" volume="$T/lun.img" disk=/bench.vmdk host=bench
"$V" vdisk create -q -d eagerzeroedthick -s "$SIZE" "$T/lun.img:/bench2.vmdk" >/dev/null
start vmfspc "$PLUGIN" volume="file:$T/lun.img?direct=0" disk=/bench2.vmdk host=bench2

# fio_run NAME RW BS QD -> IOPS (reads) or IOPS (writes)
fio_run() {
	local n=$1 rw=$2 bs=$3 qd=$4 extra=()
	[ "$rw" = write ] || [ "$rw" = read ] || extra=(--randrepeat=0 --norandommap)
	fio --name=j --ioengine=nbd --uri="nbd+unix:///?socket=$T/$n.sock" --rw="$rw" --bs="$bs" \
		--iodepth="$qd" --size="$SIZE" --time_based --runtime="$RT" --ramp_time=1 \
		"${extra[@]}" --output-format=json >"$T/fio.json" 2>"$T/fio.err" ||
		{ cat "$T/fio.err" >&2; return 1; }
	python3 -c 'import json,sys; t=open(sys.argv[1]).read(); j=json.loads(t[t.index("{"):])["jobs"][0]; print(round(j["read"]["iops"] + j["write"]["iops"]))' "$T/fio.json"
}

# pre-write both (sequential 1 MiB, whole size)
for n in file vmfs vmfspc; do
	fio --name=pre --ioengine=nbd --uri="nbd+unix:///?socket=$T/$n.sock" --rw=write --bs=1M \
		--iodepth=8 --size="$SIZE" >/dev/null 2>&1
done

out=$TOP/bench/results/glue.md
{
	echo "# bench glue: nbdkit vmfs plugin vs nbdkit file plugin"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, disk $SIZE (eagerzeroedthick vdisk on a sparse image file vs a raw file, both pre-written), fio $(fio --version) nbd engine, ${RT} s per job. Same run, so compare the ratio (machines here are noisy, +-30 %)."
	echo
	echo "vmfs: the volume opened with O_DIRECT (the default, what shared LUNs need); vmfs pc: the same with \`?direct=0\` (page cache, like the file plugin)."
	echo
	echo "| job | file plugin IOPS | vmfs IOPS | vmfs / file | vmfs pc IOPS | vmfs pc / file |"
	echo "|---|---|---|---|---|---|"
} >"$T/table"
for job in "randread 4k 1" "randread 4k 32" "randwrite 4k 1" "randwrite 4k 32" "read 1M 8" "write 1M 8"; do
	set -- $job
	f=$(fio_run file "$1" "$2" "$3")
	v=$(fio_run vmfs "$1" "$2" "$3")
	p=$(fio_run vmfspc "$1" "$2" "$3")
	r=$(python3 -c "print('%.2f' % ($v / max($f, 1)))")
	q=$(python3 -c "print('%.2f' % ($p / max($f, 1)))")
	echo "| $1 $2 QD$3 | $f | $v | ${r}x | $p | ${q}x |" >>"$T/table"
	echo "$1 $2 QD$3: file $f, vmfs $v (${r}x), vmfs pc $p (${q}x) IOPS"
done
cp "$T/table" "$out"
echo "results in $out"
